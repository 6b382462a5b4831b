//! Opening a backend's queue by name, from the servers the tests use.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use storage_contract::servers::server_env;
use storage_ports::{JobQueue, Operations, RunStore};

/// What the runs need of a backend.
pub trait Backend: JobQueue + RunStore + Operations {}
impl<T: JobQueue + RunStore + Operations> Backend for T {}

/// The backend `name`; SQLite keeps its file at `sqlite_file`.
///
/// # Errors
/// An unknown name, a missing server variable (naming the command that starts the
/// servers), or a backend that does not open.
pub async fn open(name: &str, sqlite_file: &Path) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match name {
        "postgres" => {
            let url = server_env("FLOWSTORE_TEST_POSTGRES_URL").map_err(anyhow::Error::msg)?;
            let mut config = adapter_postgres::Config::new(url);
            config.max_connections = 4;
            Arc::new(
                adapter_postgres::PostgresStore::connect(&config)
                    .await
                    .context("connecting to PostgreSQL")?,
            )
        }
        "redis" => {
            let url = server_env("FLOWSTORE_TEST_REDIS_URL").map_err(anyhow::Error::msg)?;
            Arc::new(
                adapter_redis::RedisStore::connect(&url)
                    .await
                    .context("connecting to Redis")?,
            )
        }
        "sqlite" => Arc::new(
            adapter_sqlite::SqliteStore::open(sqlite_file)
                .await
                .context("opening SQLite")?,
        ),
        other => anyhow::bail!("unknown backend {other} (postgres, redis or sqlite)"),
    })
}

/// The script that restarts the server of `name`, if it has one.
pub fn restart_script(name: &str) -> Option<String> {
    match name {
        "postgres" => server_env("FLOWSTORE_TEST_POSTGRES_RESTART").ok(),
        "redis" => server_env("FLOWSTORE_TEST_REDIS_RESTART").ok(),
        _ => None,
    }
}

/// Enqueues `n` jobs (`{"n": i}`) in batches of 1000, each with `delay` if given.
///
/// # Errors
/// The first job or batch refused.
pub async fn enqueue_all(
    store: &dyn Backend,
    t: &storage_ports::TenantId,
    q: &storage_ports::QueueName,
    n: usize,
    delay: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    for chunk in 0..n / 1000 {
        let batch = (0..1000)
            .map(|i| {
                let job = storage_ports::NewJob::new(serde_json::json!({ "n": chunk * 1000 + i }));
                match delay {
                    Some(d) => job.with_delay(d),
                    None => job,
                }
            })
            .collect();
        for r in store.enqueue_batch(t, q, batch).await? {
            r?;
        }
    }
    Ok(())
}
