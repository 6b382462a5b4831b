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
        /// `synchronous=FULL` on both sides (one fsync per commit) instead of the
        /// default `NORMAL`.
        full: bool,
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
            Self::Sqlite { full: false, .. } => "sqlite",
            Self::Sqlite { full: true, .. } => "sqlite-full",
            Self::Postgres { .. } => "postgres",
            Self::Redis { .. } => "redis",
        }
    }

    /// The durability settings in force on the server or file, as the report states
    /// them.
    pub async fn durability(&self) -> anyhow::Result<String> {
        Ok(match self {
            Self::Sqlite { raw, .. } => {
                let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(raw).await?;
                let (mode,): (String,) =
                    sqlx::query_as("PRAGMA journal_mode").fetch_one(raw).await?;
                let name = match level {
                    0 => "OFF",
                    1 => "NORMAL",
                    2 => "FULL",
                    _ => "EXTRA",
                };
                format!("journal_mode={mode}, synchronous={name}")
            }
            Self::Postgres { raw, .. } => {
                let mut shown = Vec::new();
                for setting in [
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "wal_sync_method",
                ] {
                    // current_setting() takes the name as a value: one fixed statement.
                    let (v,): (String,) = sqlx::query_as("SELECT current_setting($1)")
                        .bind(setting)
                        .fetch_one(raw)
                        .await?;
                    shown.push(format!("{setting}={v}"));
                }
                shown.join(", ")
            }
            Self::Redis { raw, .. } => {
                let mut c = raw.clone();
                let mut shown = Vec::new();
                for setting in ["appendonly", "appendfsync"] {
                    let v: Vec<String> = redis::cmd("CONFIG")
                        .arg("GET")
                        .arg(setting)
                        .query_async(&mut c)
                        .await?;
                    shown.push(format!(
                        "{setting}={}",
                        v.get(1).map_or("?", String::as_str)
                    ));
                }
                shown.join(", ")
            }
        })
    }

    /// The run store of a second node on the same server (PostgreSQL only: SQLite
    /// is one process's file, and Redis delivers to every connection alike).
    pub async fn second_node(&self) -> anyhow::Result<Option<Arc<dyn storage_ports::RunStore>>> {
        Ok(match self {
            Self::Postgres { .. } => {
                let url = std::env::var("FLOWSTORE_TEST_POSTGRES_URL")?;
                let other = PostgresStore::connect(&Config::new(url)).await?;
                Some(other.store_set().runs)
            }
            _ => None,
        })
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
    for (name, full) in [("sqlite", false), ("sqlite-full", true)] {
        if !want(name) {
            continue;
        }
        let path = dir.join(format!("{name}.db"));
        let mut config = adapter_sqlite::Config::at(&path);
        config.synchronous = if full {
            adapter_sqlite::Synchronous::Full
        } else {
            adapter_sqlite::Synchronous::Normal
        };
        let store = SqliteStore::open_with(&config).await?;
        let raw = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(if full {
                        sqlx::sqlite::SqliteSynchronous::Full
                    } else {
                        sqlx::sqlite::SqliteSynchronous::Normal
                    })
                    .foreign_keys(true)
                    .busy_timeout(std::time::Duration::from_secs(5)),
            )
            .await?;
        out.push(Arc::new(Backend::Sqlite { store, raw, full }));
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
