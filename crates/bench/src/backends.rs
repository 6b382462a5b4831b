//! The backends a run measures, and the raw driver handles the baselines use.

use std::sync::Arc;

use adapter_postgres::{Config, PostgresStore};
use adapter_redis::RedisStore;
use adapter_sqlite::SqliteStore;
use storage_ports::StoreSet;

/// One backend under measurement: flowstore's store and the raw driver on the same
/// database.
pub enum Backend {
    /// SQLite in a temp file.
    Sqlite {
        /// flowstore.
        store: SqliteStore,
        /// sqlx on the same file.
        raw: sqlx::SqlitePool,
    },
    /// PostgreSQL.
    Postgres {
        /// flowstore.
        store: PostgresStore,
        /// sqlx on the same database, the same pool size.
        raw: sqlx::PgPool,
    },
    /// Redis.
    Redis {
        /// flowstore.
        store: RedisStore,
        /// A connection manager on the same server.
        raw: redis::aio::ConnectionManager,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
            Self::Redis { .. } => "redis",
        }
    }

    pub fn set(&self) -> StoreSet {
        match self {
            Self::Sqlite { store, .. } => store.store_set(),
            Self::Postgres { store, .. } => store.store_set(),
            Self::Redis { store, .. } => store.store_set(),
        }
    }
}

/// Opens the backends named in `only` (all when empty) that the environment provides.
pub async fn open(dir: &std::path::Path, only: &[String]) -> anyhow::Result<Vec<Arc<Backend>>> {
    let want = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let mut out = Vec::new();
    if want("sqlite") {
        let path = dir.join("bench.db");
        let store = SqliteStore::open(&path).await?;
        let raw = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(std::time::Duration::from_secs(5)),
            )
            .await?;
        out.push(Arc::new(Backend::Sqlite { store, raw }));
    }
    if want("postgres") {
        let url = std::env::var("FLOWSTORE_TEST_POSTGRES_URL")
            .map_err(|_| anyhow::anyhow!("FLOWSTORE_TEST_POSTGRES_URL is not set: run `cargo xtask bench`, which starts the servers"))?;
        let store = PostgresStore::connect(&Config::new(url.clone())).await?;
        // The raw side works on flowstore's own tables, which live in the `flowstore`
        // schema (docs/schema.md).
        let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)?
            .options([("search_path", "flowstore")]);
        let raw = sqlx::postgres::PgPoolOptions::new()
            .max_connections(Config::new(url.clone()).max_connections)
            .connect_with(options)
            .await?;
        out.push(Arc::new(Backend::Postgres { store, raw }));
    }
    if want("redis") {
        let url = std::env::var("FLOWSTORE_TEST_REDIS_URL")
            .map_err(|_| anyhow::anyhow!("FLOWSTORE_TEST_REDIS_URL is not set: run `cargo xtask bench`, which starts the servers"))?;
        let store = RedisStore::connect(&url).await?;
        let raw = redis::aio::ConnectionManager::new(redis::Client::open(url.as_str())?).await?;
        out.push(Arc::new(Backend::Redis { store, raw }));
    }
    Ok(out)
}
