//! # adapter-redis
//!
//! flowstore on Redis, for engine nodes that share one fast server: workflow
//! versions, run logs (events in Redis Streams), metrics, documents and the job queue
//! (sorted sets with leases). Credentials never go into a database, and T1 is declared
//! absent: a Lua script is atomic but does not roll back when it fails half-way, so
//! Redis cannot honour "both or neither" for a run and a job in general.
//!
//! - Every key starts with `flowstore:{<tenant>}:` (see `keys.rs`); nothing ever
//!   SCANs or uses KEYS: what must be listed has an index.
//! - Every change that depends on what is stored is one Lua script, so it is atomic:
//!   version assignment (W3/W4), compare-and-set of documents (D1), leases and their
//!   fencing tokens (Q4). Read-modify-write of folded state (metric aggregates,
//!   patterns) is optimistic: the script writes only if the state is still what was
//!   read, and the adapter retries otherwise.
//! - Batches are one script call each (E11, Q10): one round trip.
//! - The connection is a `ConnectionManager`: it reconnects after a restart, and
//!   calls in flight fail with a retryable `Unavailable` error.

mod config;
mod documents;
mod error;
mod keys;
mod metrics;
mod operations;
mod queue;
mod runs;
mod schedules;
mod workflows;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use storage_ports::{Capabilities, Error, PayloadLimit, Result, StoreSet, UnsupportedStore};

pub use crate::config::Config;
pub use crate::error::map_redis_error;
use storage_ports::adapter_kit::redact_url;

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "redis";

/// The Redis store. Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    limit: PayloadLimit,
    /// The URL without its password, for health and errors.
    shown: Arc<str>,
    /// The first part of every key.
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL; `Unavailable` when the server does not answer.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(&Config::new(url)).await
    }

    /// Connects with `config`.
    ///
    /// # Errors
    /// As [`RedisStore::connect`]; `InvalidInput` for a bad key prefix.
    pub async fn connect_with(settings: &Config) -> Result<Self> {
        settings.validate()?;
        let url = settings.url.as_str();
        let shown: Arc<str> = redact_url(url).into();
        let client = redis::Client::open(url)
            .map_err(|_| Error::invalid_input(format!("{shown} is not a Redis URL")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout()))
            .set_response_timeout(Some(settings.response_timeout()))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| map_redis_error(e, "redis.connect").with_context("url", &shown))?;
        Ok(Self {
            client,
            conn,
            limit: PayloadLimit::default(),
            shown,
            prefix: settings.key_prefix.as_str().into(),
        })
    }

    /// The key builder of `tenant` under this store's prefix.
    pub(crate) fn keys(&self, tenant: &storage_ports::TenantId) -> crate::keys::Keys {
        crate::keys::Keys::of(&self.prefix, tenant)
    }

    /// Sets the payload limit (N4).
    #[must_use]
    pub fn with_payload_limit(mut self, limit: PayloadLimit) -> Self {
        self.limit = limit;
        self
    }

    /// What this adapter offers: all but credentials and transactions.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::all(BACKEND);
        c.credentials = false;
        c.transactions = false;
        c.schema_migrations = false;
        c
    }

    /// Every port: Redis where [`RedisStore::capabilities`] says so, the others
    /// `Unsupported`.
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
            transactions: no.clone(),
            operations: me.clone(),
            job_transfer: me.clone(),
            metrics_transfer: me,
        }
    }

    /// A handle on the shared connection (cheap: it is multiplexed).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own, for blocking reads (XREAD BLOCK) that must not hold up
    /// the shared one.
    pub(crate) async fn dedicated(&self) -> Result<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| map_redis_error(e, "redis.connect"))
    }
}

/// Opens the backend `config` describes, with `limit` on every payload: the entry
/// point storage-wiring's registry calls for `type: redis`.
///
/// # Errors
/// As [`RedisStore::connect_with`].
pub async fn open(config: &Config, limit: PayloadLimit) -> Result<StoreSet> {
    Ok(RedisStore::connect_with(config)
        .await?
        .with_payload_limit(limit)
        .store_set())
}
