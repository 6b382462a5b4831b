//! What a backend offers. The contract suite runs a behaviour's test only where the
//! capability is declared, and checks that an absent one answers `Unsupported`.

use serde::{Deserialize, Serialize};

/// A backend's capabilities, one flag per port or optional behaviour.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Backend name, e.g. `sqlite`.
    pub backend: String,
    /// [`WorkflowStore`](crate::WorkflowStore).
    pub workflows: bool,
    /// [`RunStore`](crate::RunStore).
    pub runs: bool,
    /// [`RunStore::watch`](crate::RunStore::watch) (E7 live part).
    pub run_watch: bool,
    /// [`MetricsStore`](crate::MetricsStore).
    pub metrics: bool,
    /// [`CredentialStore`](crate::CredentialStore).
    pub credentials: bool,
    /// [`JobQueue`](crate::JobQueue).
    pub queue: bool,
    /// [`JobQueue::wait`](crate::JobQueue::wait) (Q9).
    pub queue_wait: bool,
    /// [`JobQueue::pause`](crate::JobQueue::pause) and `resume` (Q11).
    pub queue_pause: bool,
    /// [`JobQueue::snooze`](crate::JobQueue::snooze) (Q12).
    pub queue_snooze: bool,
    /// [`JobQueue::cancel`](crate::JobQueue::cancel) (Q14).
    pub queue_cancel: bool,
    /// The finished-job history (Q15): `NewJob::keep_for`, `job`, `history`,
    /// `prune_finished`, `reenqueue`.
    pub queue_history: bool,
    /// [`JobQueue::progress`](crate::JobQueue::progress) and `complete` (Q16).
    pub queue_progress: bool,
    /// `NewJob::unique_for`: a dedup key unique also against recently finished jobs
    /// (Q17). Without it, such an enqueue is `Unsupported`.
    pub queue_unique: bool,
    /// `Dequeue::key_limit` and `queue_limit`: concurrency limits enforced at claim
    /// time across nodes (Q18). Without it, a limited dequeue is `Unsupported`.
    pub queue_limits: bool,
    /// [`ScheduleStore`](crate::ScheduleStore): periodic jobs stored in the queue's
    /// backend (Q19).
    pub queue_schedules: bool,
    /// [`Transactions`](crate::Transactions): units of work over documents, runs and
    /// the queue (T1-T6).
    pub transactions: bool,
    /// [`DocumentStore`](crate::DocumentStore).
    pub documents: bool,
    /// Versioned schema migrations (O3).
    pub schema_migrations: bool,
}

impl Capabilities {
    /// Nothing offered; set the flags the backend has.
    #[must_use]
    pub fn none(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            workflows: false,
            runs: false,
            run_watch: false,
            metrics: false,
            credentials: false,
            queue: false,
            queue_wait: false,
            queue_pause: false,
            queue_snooze: false,
            queue_cancel: false,
            queue_history: false,
            queue_progress: false,
            queue_unique: false,
            queue_limits: false,
            queue_schedules: false,
            transactions: false,
            documents: false,
            schema_migrations: false,
        }
    }

    /// Everything offered.
    #[must_use]
    pub fn all(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            workflows: true,
            runs: true,
            run_watch: true,
            metrics: true,
            credentials: true,
            queue: true,
            queue_wait: true,
            queue_pause: true,
            queue_snooze: true,
            queue_cancel: true,
            queue_history: true,
            queue_progress: true,
            queue_unique: true,
            queue_limits: true,
            queue_schedules: true,
            transactions: true,
            documents: true,
            schema_migrations: true,
        }
    }
}
