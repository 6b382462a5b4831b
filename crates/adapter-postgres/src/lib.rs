//! # adapter-postgres
//!
//! flowstore on PostgreSQL, for several engine nodes sharing one database: workflow
//! versions, run logs, metrics, documents, the job queue and T1 transactions (see
//! [`PostgresStore::capabilities`]). Credentials never go into a database.
//!
//! - Schema from `migrations/postgres/` through `sqlx::migrate!` (which holds an
//!   advisory lock, so nodes starting together apply it once), in a PostgreSQL schema
//!   of its own (`flowstore` by default) with its history in
//!   `flowstore._flowstore_migrations`, apart from a host's own; a database written
//!   by a newer schema is refused (O3).
//! - Payloads are JSONB; times TIMESTAMPTZ (microseconds, exact, N3); every table has
//!   the tenant first in its primary key and every query filters on it.
//! - The queue dequeues with `FOR UPDATE SKIP LOCKED`, fences leases with tokens from
//!   a sequence, and wakes waiters with `LISTEN/NOTIFY` (a trigger notifies when a job
//!   becomes ready, whichever node wrote it).
//! - Batches are single statements over arrays (`UNNEST`), so a batch costs one round
//!   trip, not one per item.
//! - Errors carry kinds: lost connections are `Unavailable`, serialization failures
//!   and deadlocks temporary backend errors, unique violations `AlreadyExists`.

mod config;
mod documents;
mod error;
mod group_commit;
mod listener;
mod metrics;
mod operations;
mod queue;
mod runs;
mod schedules;
mod schema_home;
mod time;
mod unit_of_work;
mod workflows;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use storage_ports::adapter_kit::redact_url;
use storage_ports::{Capabilities, PayloadLimit, Result, StoreSet, UnsupportedStore};

pub use crate::config::Config;
pub use crate::error::map_sqlx_error;
pub use crate::queue::DEQUEUE_STATEMENT;

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "postgres";

/// The migrations this build knows, embedded at compile time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The PostgreSQL store. Clones share the pool and the notification listener.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    limit: PayloadLimit,
    /// The URL without its password, for health and errors.
    shown: Arc<str>,
    /// The schema of flowstore's tables and history.
    schema: Arc<str>,
    /// Bumped on every `flowstore_queue` notification; waiters re-check on it (Q9).
    queue_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Announces every `flowstore_runs` notification; run watchers wake on it (E7).
    run_wakes: storage_ports::adapter_kit::run_wakes::RunWakes,
    /// Run-log writes waiting for a leader of a group commit (P1).
    group: Arc<group_commit::GroupCommit>,
    _listener: Arc<listener::Listener>,
}

impl PostgresStore {
    /// Connects with `config` (its `url` is `postgres://user:password@host:port/db`),
    /// applies migrations, and starts listening for queue notifications.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL, a setting out of range, or a database
    /// written by a newer flowstore; `Unavailable` when the server cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self> {
        config.validate()?;
        let shown: Arc<str> = redact_url(&config.url).into();
        let mut connect = PgConnectOptions::from_str(&config.url).map_err(|_| {
            storage_ports::Error::invalid_input(format!("{shown} is not a PostgreSQL URL"))
        })?;
        connect = match config.ssl_mode.as_str() {
            "disable" => connect.ssl_mode(PgSslMode::Disable),
            _ => connect.ssl_mode(PgSslMode::Prefer),
        };
        // Every connection resolves flowstore's unqualified table names in its schema.
        let mut startup = vec![("search_path", format!("\"{}\"", config.schema))];
        if let Some(ms) = config.statement_timeout_ms {
            startup.push(("statement_timeout", ms.to_string()));
        }
        connect = connect.options(startup);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(connect)
            .await
            .map_err(|e| map_sqlx_error(e, "postgres.connect").with_context("url", &shown))?;
        let queue_changed = Arc::new(tokio::sync::watch::Sender::new(0));
        let run_wakes = storage_ports::adapter_kit::run_wakes::RunWakes::default();
        let listener =
            listener::Listener::start(pool.clone(), queue_changed.clone(), run_wakes.clone())
                .await?;
        schema_home::adopt_public_layout(&pool, &config.schema).await?;
        let store = Self {
            pool,
            limit: PayloadLimit::default(),
            schema: config.schema.as_str().into(),
            shown,
            queue_changed,
            run_wakes,
            group: Arc::default(),
            _listener: Arc::new(listener),
        };
        store.apply_migrations().await?;
        Ok(store)
    }

    /// Sets the payload limit (N4).
    #[must_use]
    pub fn with_payload_limit(mut self, limit: PayloadLimit) -> Self {
        self.limit = limit;
        self
    }

    /// The connection pool, for tests and tools that read the tables directly.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// What this adapter offers.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::all(BACKEND);
        c.credentials = false;
        c
    }

    /// Every port: PostgreSQL for all but credentials, which answer `Unsupported`.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
        let me = Arc::new(self.clone());
        StoreSet {
            workflows: me.clone(),
            runs: me.clone(),
            metrics: me.clone(),
            credentials: Arc::new(UnsupportedStore::new(BACKEND)),
            queue: me.clone(),
            schedules: me.clone(),
            documents: me.clone(),
            transactions: me.clone(),
            operations: me.clone(),
            job_transfer: me.clone(),
            metrics_transfer: me,
        }
    }
}

/// Opens the backend `config` describes, with `limit` on every payload: the entry
/// point storage-wiring's registry calls for `type: postgres`.
///
/// # Errors
/// As [`PostgresStore::connect`].
pub async fn open(config: &Config, limit: PayloadLimit) -> Result<StoreSet> {
    Ok(PostgresStore::connect(config)
        .await?
        .with_payload_limit(limit)
        .store_set())
}
