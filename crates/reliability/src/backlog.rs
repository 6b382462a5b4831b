//! Large backlogs stay fast: a queue holding 200,000 due jobs and 200,000 expired
//! leases, where each dequeue must take under 5 ms on the server (Redis `SLOWLOG`; on
//! PostgreSQL the call's wall time, an upper bound of the statement's), and a tenant
//! of 1,000,000 runs, where `stats` and `doctor` must answer in under 100 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use storage_contract::servers::{finished_run, fresh_tenant, server_env};
use storage_ports::{Dequeue, QueueName, TenantId};

use crate::backend::Backend;

const DUE: usize = 200_000;
const EXPIRED: usize = 200_000;
const RUNS: usize = 1_000_000;
/// The lease the expired ones had, and the delay of the due ones.
const AGE: Duration = Duration::from_secs(20);
const DEQUEUE_LIMIT_MS: f64 = 5.0;
const STATS_LIMIT_MS: f64 = 100.0;

/// Runs the backlog checks on each backend named.
///
/// # Errors
/// A check that failed, or a backend that could not be used.
pub async fn run(backends: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for name in backends {
        let store = crate::backend::open(name, &std::env::temp_dir().join("unused.db")).await?;
        let queue = queue_backlog(name, &store).await?;
        let runs = run_backlog(&store).await?;
        println!("{}", json!({"backlog": name, "queue": queue, "runs": runs}));
        if queue["dequeue_server_ms_max"].as_f64().unwrap_or(f64::MAX) >= DEQUEUE_LIMIT_MS {
            failed.push(format!("{name}: a dequeue took 5 ms or more on the server"));
        }
        for what in ["stats_ms_max", "doctor_ms_max"] {
            if runs[what].as_f64().unwrap_or(f64::MAX) >= STATS_LIMIT_MS {
                failed.push(format!("{name}: {what} is 100 ms or more"));
            }
        }
    }
    anyhow::ensure!(failed.is_empty(), "backlog checks failed: {failed:?}");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn queue_backlog(name: &str, store: &Arc<dyn Backend>) -> anyhow::Result<serde_json::Value> {
    let t = fresh_tenant()?;
    let q = QueueName::new("backlog")?;
    let setup = Instant::now();
    crate::backend::enqueue_all(&**store, &t, &q, EXPIRED, None).await?;
    let mut leased = 0;
    while leased < EXPIRED {
        leased += store
            .dequeue(&t, &q, Dequeue::batch(1000, AGE))
            .await?
            .len();
    }
    crate::backend::enqueue_all(&**store, &t, &q, DUE, Some(AGE)).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    // Every lease has expired and every delayed job is due.
    tokio::time::sleep(AGE + Duration::from_secs(2)).await;
    let mut slowlog = match name {
        "redis" => Some(SlowLog::start().await?),
        _ => None,
    };
    let mut wall = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let got = store
            .dequeue(&t, &q, Dequeue::batch(10, Duration::from_secs(600)))
            .await?;
        wall.push(ms(started.elapsed()));
        anyhow::ensure!(
            got.len() == 10,
            "a dequeue from the backlog got {}",
            got.len()
        );
    }
    let server = match slowlog.as_mut() {
        Some(s) => s.longest_script_ms().await?,
        None => explain_dequeues(&t, &q, 100).await?,
    };
    let started = Instant::now();
    let stats = storage_ports::JobQueue::stats(&**store, &t, &q).await?;
    let stats_ms = ms(started.elapsed());
    wall.sort_by(f64::total_cmp);
    Ok(json!({
        "due": DUE, "expired": EXPIRED, "setup_s": (setup_s * 10.0).round() / 10.0,
        "dequeues": wall.len(), "batch": 10,
        "dequeue_server_ms_max": (server * 1000.0).round() / 1000.0,
        "dequeue_server_source": if name == "redis" { "SLOWLOG" } else { "EXPLAIN ANALYZE execution time" },
        "dequeue_wall_ms_p50": (wall[wall.len() / 2] * 1000.0).round() / 1000.0,
        "dequeue_wall_ms_max": (wall[wall.len() - 1] * 1000.0).round() / 1000.0,
        "queue_stats_ms": (stats_ms * 1000.0).round() / 1000.0,
        "queue_stats": format!("{stats:?}"),
    }))
}

async fn run_backlog(store: &Arc<dyn Backend>) -> anyhow::Result<serde_json::Value> {
    let t = fresh_tenant()?;
    let setup = Instant::now();
    for chunk in 0..RUNS / 1000 {
        let runs = (0..1000)
            .map(|i| finished_run(&format!("r{chunk}-{i}"), "backlog", i))
            .collect::<Result<Vec<_>, _>>()?;
        for r in store.store_complete_batch(&t, runs).await? {
            r?;
        }
    }
    let setup_s = setup.elapsed().as_secs_f64();
    let (mut stats, mut doctor) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let started = Instant::now();
        let s = storage_ports::Operations::stats(&**store, &t).await?;
        stats.push(ms(started.elapsed()));
        anyhow::ensure!(s.runs == RUNS as u64, "stats counted {} runs", s.runs);
        // What `flowstore doctor` asks of a backend: health, schema, stats.
        let started = Instant::now();
        let health = store.health().await;
        anyhow::ensure!(health.ok, "unhealthy: {}", health.detail);
        let _ = store.schema().await;
        storage_ports::Operations::stats(&**store, &t).await?;
        doctor.push(ms(started.elapsed()));
    }
    let max = |v: &[f64]| (v.iter().copied().fold(0.0, f64::max) * 1000.0).round() / 1000.0;
    Ok(json!({
        "runs": RUNS, "setup_s": (setup_s * 10.0).round() / 10.0,
        "stats_ms_max": max(&stats), "doctor_ms_max": max(&doctor),
    }))
}

/// The longest execution time PostgreSQL reports for `n` runs of the adapter's own
/// dequeue statement (`EXPLAIN ANALYZE`, each in a transaction rolled back, so the
/// queue stays as it was), in milliseconds.
async fn explain_dequeues(t: &TenantId, q: &QueueName, n: usize) -> anyhow::Result<f64> {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL").map_err(anyhow::Error::msg)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let sql = format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {}",
        adapter_postgres::DEQUEUE_STATEMENT
    );
    let mut longest: f64 = 0.0;
    for _ in 0..n {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL search_path TO flowstore")
            .execute(&mut *tx)
            .await?;
        // The adapter's constant statement behind a constant prefix: nothing from input.
        let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(t.as_str())
            .bind(q.as_str())
            .bind(10_i64)
            .bind(600_000_000_i64)
            .bind(i64::try_from(storage_ports::rules::lease::takeback_limit(
                10,
            ))?)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        let ms = plan[0]["Execution Time"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("EXPLAIN gave no execution time: {plan}"))?;
        longest = longest.max(ms);
    }
    Ok(longest)
}

/// Redis's own record of how long each command ran on the server.
struct SlowLog {
    conn: redis::aio::MultiplexedConnection,
}

impl SlowLog {
    async fn start() -> anyhow::Result<Self> {
        let url = server_env("FLOWSTORE_TEST_REDIS_URL").map_err(anyhow::Error::msg)?;
        let mut conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("CONFIG")
            .arg(&["SET", "slowlog-log-slower-than", "0"])
            .exec_async(&mut conn)
            .await?;
        redis::cmd("CONFIG")
            .arg(&["SET", "slowlog-max-len", "10000"])
            .exec_async(&mut conn)
            .await?;
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .exec_async(&mut conn)
            .await?;
        Ok(Self { conn })
    }

    /// The longest script call logged since the start, in milliseconds.
    async fn longest_script_ms(&mut self) -> anyhow::Result<f64> {
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg(&["GET", "10000"])
            .query_async(&mut self.conn)
            .await?;
        let mut longest_us: i64 = 0;
        let mut scripts = 0;
        for e in entries {
            let redis::Value::Array(fields) = e else {
                continue;
            };
            let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
                (fields.get(2), fields.get(3))
            else {
                continue;
            };
            let is_script = matches!(args.first(), Some(redis::Value::BulkString(b))
                if b.eq_ignore_ascii_case(b"evalsha") || b.eq_ignore_ascii_case(b"eval"));
            if is_script {
                scripts += 1;
                longest_us = longest_us.max(*us);
            }
        }
        redis::cmd("CONFIG")
            .arg(&["SET", "slowlog-log-slower-than", "10000"])
            .exec_async(&mut self.conn)
            .await?;
        anyhow::ensure!(scripts > 0, "SLOWLOG logged no script call");
        #[allow(clippy::cast_precision_loss)]
        Ok(longest_us as f64 / 1000.0)
    }
}
