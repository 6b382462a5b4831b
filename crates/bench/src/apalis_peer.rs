//! The apalis peer for P3: the same work as flowstore's queue round (enqueue N jobs in
//! batches of 500, then 4 workers fetch batches of 50, run a handler that does nothing
//! and acknowledge), through apalis 1.0 on the same server.
//!
//! apalis runs with its defaults but two settings that match our side: a queue per
//! round (so that rounds never see each other's jobs) and a fetch batch of 50. Its
//! defaults keep finished jobs and their results (flowstore deletes on ack); that is
//! what an apalis user gets, so it is what we compare against. After each round the
//! backend is asked how many jobs it holds as done, so a round that lost or skipped
//! jobs fails instead of reporting a rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, TaskSink, WorkerBuilder, WorkerError};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::backends::Backend;

const WORKERS: usize = 4;
const ENQUEUE_BATCH: usize = 500;
const FETCH_BATCH: usize = 50;

/// Enqueues `jobs` in batches, then runs 4 workers until every job has been handled and
/// the workers have stopped (which flushes their acknowledgements). A macro rather than
/// a function: the bounds apalis's `WorkerBuilder::build` needs differ per storage and
/// would be longer than the body.
macro_rules! drive {
    ($storage:expr, $jobs:expr) => {{
        let mut storage = $storage;
        let jobs: &[Value] = $jobs;
        for chunk in jobs.chunks(ENQUEUE_BATCH) {
            storage
                .push_bulk(chunk.to_vec())
                .await
                .map_err(|e| anyhow::anyhow!("apalis push: {e}"))?;
        }
        let (finished, _) = watch::channel(false);
        let progress = Arc::new(Progress {
            handled: AtomicU64::new(0),
            all: jobs.len() as u64,
            finished,
        });
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let mut done = progress.finished.subscribe();
            let worker =
                WorkerBuilder::new(format!("bench-{w}-{}", storage_ports::RunId::generate()))
                    .backend(storage.clone())
                    .data(progress.clone())
                    .build(handle);
            workers.push(tokio::spawn(worker.run_until(async move {
                done.wait_for(|all| *all)
                    .await
                    .map(|_| ())
                    .map_err(|e| WorkerError::IoError(std::io::Error::other(e)))
            })));
        }
        for worker in workers {
            worker
                .await?
                .map_err(|e| anyhow::anyhow!("apalis worker: {e}"))?;
        }
    }};
}

/// apalis's own connection to the backend under measurement: a pool or connection of
/// the same size as flowstore's, holding apalis's own schema or keys.
pub enum Peer {
    /// A SQLite file of apalis's schema beside flowstore's.
    Sqlite(sqlx::SqlitePool),
    /// The same PostgreSQL database; apalis keeps its tables in schema `apalis`.
    Postgres(sqlx::PgPool),
    /// The same Redis server.
    Redis(redis::aio::ConnectionManager),
}

impl Peer {
    /// Opens apalis on `backend`'s server and applies its migrations.
    ///
    /// # Errors
    /// The server refuses the connection or apalis's migrations fail.
    pub async fn open(backend: &Backend, dir: &std::path::Path) -> anyhow::Result<Self> {
        Ok(match backend {
            Backend::Sqlite { full, .. } => {
                // apalis's own defaults, but the same durability as flowstore's side.
                let sync = if *full {
                    sqlx::sqlite::SqliteSynchronous::Full
                } else {
                    sqlx::sqlite::SqliteSynchronous::Normal
                };
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(dir.join(format!("apalis-{}.db", backend.name())))
                            .create_if_missing(true)
                            .synchronous(sync)
                            .busy_timeout(std::time::Duration::from_secs(30)),
                    )
                    .await?;
                apalis_sqlite::SqliteStorage::setup(&pool)
                    .await
                    .map_err(|e| anyhow::anyhow!("apalis-sqlite setup: {e}"))?;
                Self::Sqlite(pool)
            }
            Backend::Postgres { raw, .. } => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(raw.options().get_max_connections())
                    .connect_with(raw.connect_options().as_ref().clone())
                    .await?;
                apalis_postgres::PostgresStorage::setup(&pool)
                    .await
                    .map_err(|e| anyhow::anyhow!("apalis-postgres setup: {e}"))?;
                Self::Postgres(pool)
            }
            Backend::Redis { raw, .. } => Self::Redis(raw.clone()),
        })
    }

    /// The most jobs apalis can take queued at once on this backend, and why, when
    /// there is such a limit.
    ///
    /// apalis-redis 1.0 puts every pushed job in its scheduled set (run at "now"), and
    /// its fetch script promotes all due jobs with one `RPUSH key unpack(ids)`: past
    /// Lua's stack limit (about 8,000 values) the script fails with "too many results
    /// to unpack" and the worker stops. Found by this benchmark at 20,000 jobs.
    ///
    /// apalis-sqlite 1.0 with 4 workers on 50,000 queued jobs stopped a worker with
    /// "database is locked" (SQLITE_BUSY), and its rate falls as the queue grows
    /// (1,675 jobs/s at 2,000 jobs, 491 at 10,000), so it is measured at 10,000.
    pub fn backlog_limit(&self) -> Option<(usize, &'static str)> {
        match self {
            Self::Redis(_) => Some((
                5_000,
                "apalis-redis 1.0 fails with more than about 8,000 queued jobs, its fetch script unpacks every due job into one call",
            )),
            Self::Sqlite(_) => Some((
                10_000,
                "apalis-sqlite 1.0 at 50,000 jobs stopped a worker with 'database is locked', and slows as the queue grows",
            )),
            Self::Postgres(_) => None,
        }
    }

    /// One round: `n` jobs through queue `queue`. Returns `n` once every job is done.
    ///
    /// # Errors
    /// apalis fails, or fewer than `n` jobs end done.
    pub async fn round(&self, queue: &str, n: usize) -> anyhow::Result<u64> {
        let jobs: Vec<Value> = (0..n).map(|i| json!({"job": i})).collect();
        match self {
            Self::Sqlite(pool) => {
                let config = apalis_sqlite::Config::default()
                    .queue(queue)
                    .batch_size(FETCH_BATCH);
                let storage = apalis_sqlite::SqliteStorage::<Value>::new(pool).with_config(config);
                drive!(storage, &jobs);
                let done: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status = 'Done'",
                )
                .bind(queue)
                .fetch_one(pool)
                .await?;
                check(done, n)
            }
            Self::Postgres(pool) => {
                let config = apalis_postgres::Config::default()
                    .queue(queue)
                    .batch_size(FETCH_BATCH);
                let storage =
                    apalis_postgres::PostgresStorage::<Value>::new(pool).with_config(config);
                drive!(storage, &jobs);
                let done: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
                )
                .bind(queue)
                .fetch_one(pool)
                .await?;
                check(done, n)
            }
            Self::Redis(conn) => {
                let config = apalis_redis::Config::default()
                    .queue(queue)
                    .batch_size(FETCH_BATCH);
                let done_set = config.done_jobs_set();
                let storage =
                    apalis_redis::RedisStorage::<Value, _>::new(conn.clone()).with_config(config);
                drive!(storage, &jobs);
                let done: i64 = redis::cmd("SCARD")
                    .arg(done_set)
                    .query_async(&mut conn.clone())
                    .await?;
                check(done, n)
            }
        }
    }
}

fn check(done: i64, n: usize) -> anyhow::Result<u64> {
    anyhow::ensure!(
        usize::try_from(done) == Ok(n),
        "apalis finished {done} of {n} jobs"
    );
    Ok(n as u64)
}

/// Counts handled jobs and says when all are.
struct Progress {
    handled: AtomicU64,
    all: u64,
    finished: watch::Sender<bool>,
}

#[allow(clippy::needless_pass_by_value)] // apalis hands extracted data by value
async fn handle(_job: Value, progress: Data<Arc<Progress>>) -> Result<(), BoxDynError> {
    if progress.handled.fetch_add(1, Ordering::Relaxed) + 1 >= progress.all {
        progress.finished.send_replace(true);
    }
    Ok(())
}
