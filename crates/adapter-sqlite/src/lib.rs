//! # adapter-sqlite
//!
//! flowstore on one SQLite file: the embedded default for everything but workflow
//! files. It keeps workflow versions, run logs, metrics, the job queue,
//! documents and T1 transactions (see [`SqliteStore::capabilities`]).
//! Credentials never go into a database.
//!
//! Connection set-up, and why:
//! - `journal_mode=WAL`: readers do not block the writer, and the writer does not
//!   block readers.
//! - `synchronous=NORMAL` (the default): in WAL mode a commit is durable against a
//!   process crash. A power cut may lose the last commits, but never corrupts the
//!   file. This is the trade-off SQLite documents for WAL; `synchronous: full` in the
//!   config costs an fsync per commit and survives a power cut too.
//! - `foreign_keys=ON`: SQLite leaves it off by default, and without it deletes
//!   orphan child rows.
//! - `busy_timeout=30s`: a writer of another process waits for the write lock instead
//!   of returning `SQLITE_BUSY`. Write transactions begin `IMMEDIATE`, so they never
//!   have to upgrade a read lock, the case where waiting cannot help; writers of this
//!   process queue fairly on an async lock first, so none is starved by its siblings.
//!
//! The schema comes from `migrations/sqlite/` through `sqlx::migrate!`. It is applied
//! when the store opens, recorded in the database, and idempotent. A database written
//! by a newer schema is refused (O3).

mod config;
mod documents;
mod error;
mod group_commit;
mod metrics;
mod operations;
mod queue;
mod runs;
mod schedules;
mod schema_home;
mod unit_of_work;
mod workflows;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use storage_ports::{
    Capabilities, Error, PayloadLimit, Result, SharedClock, StoreSet, Timestamp, UnsupportedStore,
};

pub use crate::config::{Config, Synchronous};
pub use crate::error::map_sqlx_error;

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "sqlite";

/// The migrations this build knows, embedded at compile time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite store. Clones share the pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    limit: PayloadLimit,
    path: Arc<str>,
    /// Bumped on every queue change in this process; waiters wake on it (Q9).
    queue_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Announces runs whose logs grew in this process; run watchers wake on it (E7).
    run_wakes: storage_ports::adapter_kit::run_wakes::RunWakes,
    /// Run-log writes waiting for the leader of the next group commit.
    group: Arc<group_commit::GroupCommit>,
    /// Writers of this process queue here, in order, before taking SQLite's write
    /// lock: SQLite has one writer at a time, and its busy handler is not fair, so
    /// without this a writer can be starved past `busy_timeout` by its own siblings.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Where "now" comes from: SQLite has no clock shared between hosts, so due jobs,
    /// leases and document times read this one (the system's unless set).
    clock: SharedClock,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, then applies migrations.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened. `InvalidInput` when a newer
    /// flowstore wrote the database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(&Config::at(path.as_ref())).await
    }

    /// Opens (creating if missing) the database `config` names, then applies
    /// migrations.
    ///
    /// # Errors
    /// As [`SqliteStore::open`]; `InvalidInput` for a setting out of range.
    pub async fn open_with(config: &Config) -> Result<Self> {
        config.validate()?;
        let path = config.path.as_path();
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| map_sqlx_error(e, "sqlite.open"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match config.synchronous {
                config::Synchronous::Normal => SqliteSynchronous::Normal,
                config::Synchronous::Full => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout());
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .connect_with(options)
            .await
            .map_err(|e| map_sqlx_error(e, "sqlite.open").with_context("path", &shown))?;
        let store = Self {
            pool,
            limit: PayloadLimit::default(),
            path: shown.into(),
            queue_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            run_wakes: storage_ports::adapter_kit::run_wakes::RunWakes::default(),
            group: Arc::default(),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            clock: storage_ports::clock::system(),
        };
        store.apply_migrations().await?;
        Ok(store)
    }

    /// This process's turn to write; held until the write transaction ends.
    pub(crate) async fn write_gate(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.write_gate.clone().lock_owned().await
    }

    /// A write transaction that takes SQLite's write lock at `BEGIN IMMEDIATE`, waiting
    /// for it under `busy_timeout`. A deferred transaction would take it at its first
    /// write and, in WAL mode, fail with `SQLITE_BUSY` at once when another connection
    /// wrote since its snapshot began; an immediate one never has to upgrade.
    pub(crate) async fn write_tx(
        &self,
    ) -> std::result::Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Sets the payload limit (N4).
    #[must_use]
    pub fn with_payload_limit(mut self, limit: PayloadLimit) -> Self {
        self.limit = limit;
        self
    }

    /// Reads time from `clock` instead of the system's (a test clock, or the host's).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The current time by this store's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// What this adapter offers today.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::none(BACKEND);
        c.workflows = true;
        c.documents = true;
        c.runs = true;
        c.run_watch = true;
        c.metrics = true;
        c.queue = true;
        c.queue_wait = true;
        c.queue_pause = true;
        c.queue_snooze = true;
        c.queue_cancel = true;
        c.queue_history = true;
        c.queue_progress = true;
        c.queue_unique = true;
        c.queue_limits = true;
        c.queue_schedules = true;
        c.transactions = true;
        c.schema_migrations = true;
        c
    }

    /// Writes a consistent copy of the whole database to `path` (`VACUUM INTO`):
    /// one file, with what the write-ahead log holds folded in, as of the last commit.
    /// It is what a database kept in a bucket uploads. `path` must not exist.
    ///
    /// # Errors
    /// `Unavailable` when the copy cannot be written (a file at `path`, a full disk).
    pub async fn snapshot_to(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| {
            storage_ports::Error::invalid_input(format!("{} is not UTF-8", path.display()))
        })?;
        use crate::error::SqlxResultExt as _;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .op("operations.snapshot")?;
        Ok(())
    }

    /// Closes the database's connections (waiting for those in use), so that the file
    /// can be removed or replaced.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every port but credentials, which never go into a database.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
        let me = Arc::new(self.clone());
        let no = Arc::new(UnsupportedStore::new(BACKEND));
        StoreSet {
            workflows: me.clone(),
            runs: me.clone(),
            metrics: me.clone(),
            credentials: no.clone(),
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
/// point storage-wiring's registry calls for `type: sqlite`.
///
/// # Errors
/// As [`SqliteStore::open_with`].
pub async fn open(config: &Config, limit: PayloadLimit) -> Result<StoreSet> {
    Ok(SqliteStore::open_with(config)
        .await?
        .with_payload_limit(limit)
        .store_set())
}
