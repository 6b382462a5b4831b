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
