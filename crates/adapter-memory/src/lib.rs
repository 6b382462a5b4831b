//! # adapter-memory
//!
//! flowstore's in-memory adapter: every port, every behaviour of the spec. It is the
//! reference the other adapters are compared with and the backend a host uses in its
//! own unit tests, so nothing is faked: leases expire by the clock, versions are never
//! reused, watchers wake on appends, percentiles come from the shared sketch.
//!
//! Data lives as long as the [`MemoryStore`] (and its clones): nothing is persisted.

mod config;
mod credentials;
mod documents;
mod metrics;
mod operations;
mod queue;
mod runs;
mod schedules;
mod state;
mod unit_of_work;
mod workflows;

pub use crate::config::Config;
use std::sync::{Arc, Mutex, MutexGuard};

use storage_ports::{Capabilities, PayloadLimit, SharedClock, StoreSet, Timestamp};
use tokio::sync::watch;

use crate::state::State;

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "memory";

/// Options of the memory adapter.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// Largest accepted payload (N4).
    pub payload_limit: PayloadLimit,
    /// Where "now" comes from: due jobs, leases, document times.
    pub clock: SharedClock,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            payload_limit: PayloadLimit::default(),
            clock: storage_ports::clock::system(),
        }
    }
}

impl MemoryOptions {
    /// Sets the payload limit in bytes.
    #[must_use]
    pub fn with_payload_limit(mut self, bytes: usize) -> Self {
        self.payload_limit = PayloadLimit(bytes);
        self
    }

    /// Reads time from `clock` instead of the system's (a test clock, or the host's).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

/// The in-memory store. Clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    options: MemoryOptions,
    /// Bumped on every run-log change; watchers wait on it (E7).
    runs_changed: watch::Sender<u64>,
    /// Bumped on every queue change that may make a job ready (Q9).
    queue_changed: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryOptions::default())
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new(options: MemoryOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                options,
                runs_changed: watch::Sender::new(0),
                queue_changed: watch::Sender::new(0),
            }),
        }
    }

    /// What this adapter offers: everything.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::all(BACKEND);
        // Nothing is persisted, so there is no schema to migrate.
        c.schema_migrations = false;
        c
    }

    /// Every port, backed by this store.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
        let s = Arc::new(self.clone());
        StoreSet {
            workflows: s.clone(),
            runs: s.clone(),
            metrics: s.clone(),
            credentials: s.clone(),
            queue: s.clone(),
            schedules: s.clone(),
            documents: s.clone(),
            transactions: s.clone(),
            operations: s.clone(),
            job_transfer: s.clone(),
            metrics_transfer: s,
        }
    }

    /// Locks the state. A panic while the lock was held cannot leave the maps half
    /// updated (every mutation validates first, then writes), so a poisoned lock is
    /// recovered rather than propagated.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> Timestamp {
        self.inner.options.clock.now()
    }

    fn limit(&self) -> PayloadLimit {
        self.inner.options.payload_limit
    }

    fn notify_runs(&self) {
        self.inner
            .runs_changed
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    fn notify_queue(&self) {
        self.inner
            .queue_changed
            .send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Opens the backend `config` describes, with `limit` on every payload: the entry
/// point storage-wiring's registry calls for `type: memory`.
#[must_use]
pub fn open(_config: &Config, limit: storage_ports::PayloadLimit) -> storage_ports::StoreSet {
    MemoryStore::new(MemoryOptions::default().with_payload_limit(limit.0)).store_set()
}
