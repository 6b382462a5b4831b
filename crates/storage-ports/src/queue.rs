//! The job-queue port (spec Q1-Q10): priority, delay, leases with fencing, retries with
//! backoff, dead letters, batches, waiting without polling.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{JobId, QueueName, TenantId};
use crate::job_history::{CancelOutcome, HistoryQuery, JobInfo};
use crate::rules::backoff::Backoff;
use crate::rules::cursor::Page;
use crate::time::Timestamp;

/// The longest `NewJob::delay`: far enough for any schedule, near enough that the due
/// time stays representable on every backend.
pub const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// An explicit id, or `None` to generate one. An existing id is `AlreadyExists`.
    pub id: Option<JobId>,
    /// Payload.
    pub payload: Value,
    /// Higher runs first (Q2).
    pub priority: i32,
    /// Not before this time (Q3), as the caller's clock reads it; `None` means now (or
    /// `delay` from now).
    pub run_at: Option<Timestamp>,
    /// Not before this long after the backend receives the job, measured on the
    /// backend's clock (Q3), so a node whose clock is off does not move the job.
    /// Exclusive with `run_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Attempts before the job is dead (Q5); at least 1.
    pub max_attempts: u32,
    /// Retry backoff (Q5).
    pub backoff: Backoff,
    /// A second enqueue with the same key while this job is pending, scheduled or
    /// running returns it (Q8), and says so ([`Enqueued::deduplicated`]).
    pub dedup_key: Option<String>,
    /// Widens the uniqueness of `dedup_key` (Q17): this enqueue also returns a job with
    /// the same key that completed or died within this period before now, on the
    /// backend's clock ("one per key per hour"); a cancelled job never counts. The job
    /// is kept at least this long after it finishes, so that a later enqueue with the
    /// same period finds it. Needs a `dedup_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_for: Option<Duration>,
    /// The key a dequeue's [`Dequeue::key_limit`] counts running jobs by (Q18), for
    /// example a customer: at most that many jobs of one key run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// How long the job stays in the finished-job history after it finished (Q15):
    /// completed, cancelled or dead, it is listed by [`JobQueue::history`] until
    /// [`JobQueue::prune_finished`] removes it this long after. `None` (the default):
    /// a completed job is deleted at ack, a cancelled or dead one stays until it is
    /// requeued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_for: Option<Duration>,
}

impl NewJob {
    /// A job with `payload`, priority 0, now, 5 attempts, default backoff.
    #[must_use]
    pub fn new(payload: Value) -> Self {
        Self {
            id: None,
            payload,
            priority: 0,
            run_at: None,
            delay: None,
            max_attempts: 5,
            backoff: Backoff::default(),
            dedup_key: None,
            unique_for: None,
            concurrency_key: None,
            keep_for: None,
        }
    }

    /// Keeps the job in the finished-job history this long after it finished (Q15).
    #[must_use]
    pub fn with_keep_for(mut self, keep_for: Duration) -> Self {
        self.keep_for = Some(keep_for);
        self
    }

    /// Sets the concurrency key (Q18).
    #[must_use]
    pub fn with_concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Makes `dedup_key` unique also against jobs that completed or died within
    /// `period` (Q17).
    #[must_use]
    pub fn with_unique_for(mut self, period: Duration) -> Self {
        self.unique_for = Some(period);
        self
    }

    /// How long the job is kept after it finishes, in whole microseconds, for backends
    /// that add it to their own clock: `keep_for`, or `unique_for` when that is longer
    /// (a unique job must outlive its period, Q17); `None` when neither is set.
    #[must_use]
    pub fn keep_for_micros(&self) -> Option<i64> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match (self.keep_for.map(micros), self.unique_for.map(micros)) {
            (Some(k), Some(u)) => Some(k.max(u)),
            (k, u) => k.or(u),
        }
    }

    /// `unique_for` in whole microseconds, 0 when not set.
    #[must_use]
    pub fn unique_for_micros(&self) -> i64 {
        self.unique_for
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the earliest run time.
    #[must_use]
    pub fn with_run_at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Sets a delay the backend measures on its own clock (Q3).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// When the job is due, given the backend's `now`: `run_at`, else `now + delay`,
    /// else `now`.
    #[must_use]
    pub fn due_at(&self, now: Timestamp) -> Timestamp {
        self.run_at
            .unwrap_or_else(|| now.plus(self.delay.unwrap_or_default()))
    }

    /// The delay in whole microseconds, for backends that add it to their own clock.
    #[must_use]
    pub fn delay_micros(&self) -> i64 {
        self.delay
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// Sets the deduplication key.
    #[must_use]
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    /// Sets the attempts limit.
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the backoff.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets an explicit id.
    #[must_use]
    pub fn with_id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// Checks the attempts limit, the dedup key and the run time.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.run_at.is_some() && self.delay.is_some() {
            return Err(Error::invalid_input(
                "a job takes run_at or delay, not both",
            ));
        }
        if self.delay.is_some_and(|d| d > MAX_DELAY) {
            return Err(Error::invalid_input("delay must be at most 100 years"));
        }
        if self.keep_for.is_some_and(|d| d > MAX_DELAY) {
            return Err(Error::invalid_input("keep_for must be at most 100 years"));
        }
        if self.unique_for.is_some_and(|d| d > MAX_DELAY) {
            return Err(Error::invalid_input("unique_for must be at most 100 years"));
        }
        for (what, key) in [
            ("dedup key", &self.dedup_key),
            ("concurrency key", &self.concurrency_key),
        ] {
            if let Some(k) = key {
                crate::rules::limits::check_short(what, k)?;
            }
        }
        if self.unique_for.is_some() && self.dedup_key.is_none() {
            return Err(Error::invalid_input(
                "unique_for widens a dedup_key: set one with with_dedup_key",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::invalid_input("max_attempts must be at least 1"));
        }
        if self
            .dedup_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 256)
        {
            return Err(Error::invalid_input("dedup_key must be 1-256 bytes"));
        }
        Ok(())
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The job's id (the first job's, when deduplicated).
    pub job_id: JobId,
    /// Whether a pending job with the same dedup key was returned instead (Q6).
    pub deduplicated: bool,
}

/// Proof of holding a job (Q4). `token` is a fencing token: it changes every time the
/// job is leased, so a worker whose lease was taken over cannot ack or fail it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Queue.
    pub queue: QueueName,
    /// Job.
    pub job_id: JobId,
    /// Fencing token.
    pub token: u64,
    /// When the lease ends unless extended.
    pub expires_at: Timestamp,
}

impl Lease {
    /// The error every adapter returns when this lease is no longer current (Q4).
    #[must_use]
    pub fn stale(&self) -> Error {
        Error::lease_lost(format!(
            "lease {} of job {} is no longer current (the job was leased again, acknowledged or is dead)",
            self.token, self.job_id
        ))
    }
}

/// A dequeued job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedJob {
    /// The lease to ack, fail or extend with.
    pub lease: Lease,
    /// Payload.
    pub payload: Value,
    /// Priority.
    pub priority: i32,
    /// This delivery's attempt number, from 1.
    pub attempt: u32,
    /// Attempts limit.
    pub max_attempts: u32,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
}

/// A dequeue request (Q4, Q10, Q18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dequeue {
    /// Lease up to this many jobs (1..=1000).
    pub max: usize,
    /// Lease length.
    pub lease_for: Duration,
    /// At most this many running jobs per concurrency key, counted across every node
    /// at claim time (Q18); jobs of a key at its limit stay pending and the claim takes
    /// other keys' jobs instead. Jobs without a key are not limited by it.
    pub key_limit: Option<u32>,
    /// At most this many running jobs in the queue, counted across every node (Q18).
    pub queue_limit: Option<u32>,
}

impl Dequeue {
    /// One job with a `lease_for` lease.
    #[must_use]
    pub fn one(lease_for: Duration) -> Self {
        Self::batch(1, lease_for)
    }

    /// Up to `max` jobs.
    #[must_use]
    pub fn batch(max: usize, lease_for: Duration) -> Self {
        Self {
            max,
            lease_for,
            key_limit: None,
            queue_limit: None,
        }
    }

    /// At most `n` running jobs per concurrency key (Q18).
    #[must_use]
    pub fn with_key_limit(mut self, n: u32) -> Self {
        self.key_limit = Some(n);
        self
    }

    /// At most `n` running jobs in the queue (Q18).
    #[must_use]
    pub fn with_queue_limit(mut self, n: u32) -> Self {
        self.queue_limit = Some(n);
        self
    }

    /// Whether a limit is set, so the claim must count running jobs.
    #[must_use]
    pub fn is_limited(&self) -> bool {
        self.key_limit.is_some() || self.queue_limit.is_some()
    }

    /// How many the claim may lease when `running` jobs run in the queue now.
    #[must_use]
    pub fn room(&self, running: u64) -> usize {
        match self.queue_limit {
            Some(limit) => {
                let left = u64::from(limit).saturating_sub(running);
                self.max.min(usize::try_from(left).unwrap_or(usize::MAX))
            }
            None => self.max,
        }
    }

    /// Checks bounds.
    ///
    /// # Errors
    /// `InvalidInput` for `max` outside 1..=1000 or a zero lease.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.max) {
            return Err(Error::invalid_input("dequeue max must be within 1..=1000"));
        }
        if self.lease_for.is_zero() {
            return Err(Error::invalid_input("lease duration must be positive"));
        }
        if self.key_limit == Some(0) || self.queue_limit == Some(0) {
            return Err(Error::invalid_input(
                "a concurrency limit must be at least 1 (leave it unset for none)",
            ));
        }
        Ok(())
    }
}

/// How a job failed (Q5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// Error text, kept with dead jobs.
    pub error: String,
    /// Whether to retry (subject to max attempts).
    pub retry: bool,
}

/// What happened to a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailOutcome {
    /// Rescheduled at this time.
    Retrying {
        /// Next run time.
        at: Timestamp,
    },
    /// Moved to the dead letters.
    Dead,
}

/// A dead job (Q5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadJob {
    /// Job.
    pub job_id: JobId,
    /// Payload.
    pub payload: Value,
    /// Attempts made.
    pub attempts: u32,
    /// Last error text.
    pub last_error: String,
    /// When it died.
    pub died_at: Timestamp,
}

/// Counts per state (Q8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStats {
    /// Ready to run now.
    pub pending: u64,
    /// Waiting for a future run time (including retry backoff).
    pub scheduled: u64,
    /// Leased, lease not expired.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
    /// Whether the queue is paused (Q11): it delivers nothing until resumed.
    #[serde(default)]
    pub paused: bool,
    /// Completed jobs kept in the finished-job history (Q15).
    #[serde(default)]
    pub completed: u64,
    /// Cancelled jobs (Q14).
    #[serde(default)]
    pub cancelled: u64,
}

impl NewJob {
    /// The id an imported job must carry.
    ///
    /// # Errors
    /// `InvalidInput` when it has none.
    pub fn imported_id(&self) -> Result<&JobId> {
        self.id
            .as_ref()
            .ok_or_else(|| Error::invalid_input("an imported job must carry its id"))
    }
}

/// A dead job's last state, carried by export and import (O4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadState {
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
    /// When it died.
    pub died_at: Timestamp,
}

impl DeadState {
    /// The dead state of a stored job row, or `None` when the job is not dead; SQL
    /// adapters keep the same columns (`state`, `attempts`, `last_error`, `died_at`).
    #[must_use]
    pub fn of_row(
        state: &str,
        attempts: u32,
        last_error: Option<String>,
        died_at: Option<i64>,
    ) -> Option<Self> {
        (state == "dead").then(|| Self {
            attempts,
            last_error: last_error.unwrap_or_default(),
            died_at: Timestamp::from_micros(died_at.unwrap_or(0)),
        })
    }
}

/// A job as exported (O4): what is needed to store it again elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedJob {
    /// Queue.
    pub queue: QueueName,
    /// The job as enqueued, with its id.
    pub job: NewJob,
    /// For a dead letter, how it died; `None` for a pending job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<DeadState>,
}

/// The job queue.
///
/// # Behavior
/// - A leased job is invisible to others until its lease expires; then it is delivered
///   again with its attempt raised (Q4).
/// - Ack, fail or heartbeat with a token that is no longer current (the job was leased
///   again, acked or died) is `LeaseLost`. A lease that expired stays its holder's until
///   a dequeue takes the job over ([`crate::rules::lease`]).
/// - Every time decision (due, expired, dead) is the backend's clock, never the
///   caller's: PostgreSQL and Redis use the server's.
/// - Queues are isolated by name and tenant (Q8).
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Enqueues jobs in one call (Q10); results per job, in order.
    ///
    /// # Errors
    /// Backend errors that stopped the whole batch.
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>>;

    /// Leases up to `req.max` ready jobs, best first (Q2, Q4, Q10).
    ///
    /// # Errors
    /// `InvalidInput` (see [`Dequeue::validate`]).
    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>>;

    /// Extends a lease (Q4).
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease.
    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease>;

    /// Acknowledges jobs as done (Q1, Q10); results per lease, in order.
    ///
    /// # Errors
    /// Backend errors that stopped the whole batch.
    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>>;

    /// Fails a job: retry with backoff or dead (Q5).
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease.
    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome>;

    /// Dead jobs of a queue, oldest death first, at most `limit`.
    ///
    /// # Errors
    /// Backend errors.
    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>>;

    /// Makes a dead job pending again with its attempts reset (Q5).
    ///
    /// # Errors
    /// `NotFound` when no such dead job exists.
    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()>;

    /// Counts per state (Q8).
    ///
    /// # Errors
    /// Backend errors.
    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats>;

    /// Waits until a job may be ready or `timeout` passes, without busy polling (Q9);
    /// returns whether work may be ready.
    ///
    /// # Errors
    /// `Unsupported` without the `queue_wait` capability.
    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool>;

    /// Acknowledges `done` and leases up to `next.max` jobs of `queue`, in one round
    /// trip or one commit where the backend allows (Q13): a worker's loop costs one
    /// call per batch instead of two. The acks come first and have their results per
    /// lease, as [`JobQueue::ack_batch`] gives them; the new leases follow the rules
    /// of [`JobQueue::dequeue`] (a paused queue leases nothing, its acks still count).
    ///
    /// # Errors
    /// As `ack_batch` and `dequeue`: `InvalidInput` for `next`, backend errors that
    /// stopped the call (then neither the acks nor the leases happened where the
    /// backend has transactions).
    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<AckedAndLeased>;

    /// Pauses a queue (Q11), for an incident or a deploy: the state is stored, so every
    /// node sees it and it survives restarts. A paused queue delivers nothing and takes
    /// no expired lease back; enqueues are accepted, leases already out keep working
    /// (heartbeat, ack, fail, snooze), and `wait` does not wake for it. Pausing a
    /// paused queue changes nothing.
    ///
    /// # Errors
    /// `Unsupported` without the `queue_pause` capability.
    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()>;

    /// Resumes a paused queue (Q11): it delivers again at once, and waiters wake.
    /// Resuming a queue that is not paused changes nothing.
    ///
    /// # Errors
    /// `Unsupported` without the `queue_pause` capability.
    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()>;

    /// Puts a leased job back to run again after `delay`, without using up an attempt
    /// (Q12): for a worker that finds it cannot proceed yet (a rate limit, a resource
    /// not ready). Fenced by the lease's token; the time counts from the backend's
    /// clock, which also answers when the job is due again.
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease; `InvalidInput` for a delay over [`MAX_DELAY`];
    /// `Unsupported` without the `queue_snooze` capability.
    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp>;

    /// Cancels a job (Q14). A pending or scheduled job is finished as cancelled at
    /// once and never delivered. A running job's cancel is cooperative: the call
    /// answers [`CancelOutcome::Requested`], and its holder's next heartbeat, progress,
    /// ack, fail or snooze answers [`ErrorKind::Cancelled`](crate::ErrorKind) and
    /// finishes it as cancelled; an expired lease of it is finished as cancelled
    /// instead of being delivered again. Asking again while the request stands
    /// answers `Requested` again.
    ///
    /// # Errors
    /// `NotFound` for no such job; `PreconditionFailed` for a finished job (completed,
    /// cancelled or dead); `Unsupported` without the `queue_cancel` capability.
    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome>;

    /// Records a lease holder's progress (Q16), fenced by its token; the last value
    /// recorded is what [`JobQueue::job`] and the history show.
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease; `Cancelled` when a cancel was asked for (the job
    /// is then finished as cancelled); `InvalidInput` over the payload limit;
    /// `Unsupported` without the `queue_progress` capability.
    async fn progress(&self, tenant: &TenantId, lease: &Lease, progress: Value) -> Result<()>;

    /// Acknowledges a job with its output (Q16), kept in the finished-job history when
    /// the job has a `keep_for` (and dropped with the job otherwise).
    ///
    /// # Errors
    /// As [`JobQueueExt::ack`]; `InvalidInput` over the payload limit; `Unsupported`
    /// without the `queue_progress` capability.
    async fn complete(&self, tenant: &TenantId, lease: &Lease, output: Value) -> Result<()>;

    /// One job in whatever state it is, finished ones included while they are kept
    /// (Q15).
    ///
    /// # Errors
    /// `NotFound` for no such job; `CorruptData` for a stored job that cannot be read;
    /// `Unsupported` without the `queue_history` capability.
    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo>;

    /// The finished jobs of a queue (Q15), newest finish first, keyset-paged, filtered
    /// by how they finished. A stored job that cannot be read is reported and skipped.
    ///
    /// # Errors
    /// `InvalidInput` for a cursor this listing did not issue; `Unsupported` without
    /// the `queue_history` capability.
    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>>;

    /// Removes up to `max` (1..=10000) finished jobs of the tenant whose `keep_for`
    /// has passed since they finished, by the backend's clock (Q15); returns how many.
    /// Bounded, so retention works off a backlog over calls; call until it returns
    /// less than `max`.
    ///
    /// # Errors
    /// `InvalidInput` for `max` out of range; `Unsupported` without the
    /// `queue_history` capability.
    async fn prune_finished(&self, tenant: &TenantId, max: usize) -> Result<u64>;

    /// Up to `limit` (1..=1000) jobs of `queue` whose status is `status`, on the
    /// backend's clock, in the queue's own order for it (Q15): pending ones in
    /// delivery order (priority, then run-at time, then enqueue order), scheduled ones
    /// by run-at time, running ones by lease expiry, finished ones newest finish first
    /// (as [`JobQueue::history`], which pages them).
    ///
    /// # Errors
    /// `InvalidInput` for `limit` out of range; `Unsupported` without the
    /// `queue_history` capability.
    async fn jobs(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        status: crate::JobStatus,
        limit: usize,
    ) -> Result<Vec<crate::JobInfo>>;

    /// The running jobs (leased, lease not expired) of `queue` per concurrency key
    /// (Q18), the busiest first (then by key), at most [`MAX_RUNNING_KEYS`] keys: what
    /// the limits are counting, for operators.
    ///
    /// # Errors
    /// `Unsupported` without the `queue_limits` capability.
    async fn running_by_key(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
    ) -> Result<Vec<(String, u64)>>;

    /// Enqueues a finished job again as a new job (Q15): a fresh id, the original's
    /// payload, priority, attempts limit, backoff, dedup key and `keep_for`, due now.
    /// The original stays in the history.
    ///
    /// # Errors
    /// `NotFound` when no finished job of that id is kept; `Unsupported` without the
    /// `queue_history` capability.
    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued>;
}

/// Checks the `limit` of [`JobQueue::jobs`].
///
/// # Errors
/// `InvalidInput` outside 1..=1000.
pub fn check_jobs_limit(limit: usize) -> Result<()> {
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid_input(format!(
            "jobs lists 1 to 1000 jobs per call, not {limit}"
        )));
    }
    Ok(())
}

/// The most keys [`JobQueue::running_by_key`] answers.
pub const MAX_RUNNING_KEYS: usize = 1000;

/// Orders per-key running counts as [`JobQueue::running_by_key`] answers them, and
/// keeps the first [`MAX_RUNNING_KEYS`].
#[must_use]
pub fn busiest_first(mut counts: Vec<(String, u64)>) -> Vec<(String, u64)> {
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(MAX_RUNNING_KEYS);
    counts
}

/// The largest `max` of [`JobQueue::prune_finished`].
pub const MAX_PRUNE_BATCH: usize = 10_000;

/// Checks the `max` of [`JobQueue::prune_finished`].
///
/// # Errors
/// `InvalidInput` outside `1..=MAX_PRUNE_BATCH`.
pub fn check_prune_batch(max: usize) -> Result<()> {
    if !(1..=MAX_PRUNE_BATCH).contains(&max) {
        return Err(Error::invalid_input(format!(
            "prune_finished takes 1 to {MAX_PRUNE_BATCH} jobs per call, not {max}"
        )));
    }
    Ok(())
}

/// The error a lease holder gets once its job was cancelled (Q14).
#[must_use]
pub fn cancelled_error(job: &JobId) -> Error {
    Error::cancelled(format!(
        "job {job} was cancelled; stop working on it (its lease is no longer current)"
    ))
}

/// The error for cancelling a job that already finished (Q14).
#[must_use]
pub fn finished_error(job: &JobId, status: &str) -> Error {
    Error::precondition_failed(format!(
        "job {job} is already {status}; only a pending, scheduled or running job can be cancelled"
    ))
}

/// The job a re-enqueue creates from a finished one's spec (Q15): a fresh id, due now.
#[must_use]
pub fn reenqueued(original: &NewJob) -> NewJob {
    NewJob {
        id: None,
        run_at: None,
        delay: None,
        ..original.clone()
    }
}

/// When a job finished at `finished_at` leaves the history, given its `keep_for` in
/// microseconds: `None` when it is kept until requeued.
#[must_use]
pub fn keep_until(finished_at: Timestamp, keep_for_micros: Option<i64>) -> Option<i64> {
    keep_for_micros.map(|k| finished_at.as_micros().saturating_add(k))
}

/// What [`JobQueue::ack_and_dequeue`] did (Q13).
#[derive(Debug)]
pub struct AckedAndLeased {
    /// One result per lease acknowledged, in order.
    pub acked: Vec<Result<()>>,
    /// The jobs newly leased, best first.
    pub leased: Vec<LeasedJob>,
}

/// [`JobQueue::ack_and_dequeue`] as an `ack_batch` followed by a `dequeue`: for a
/// backend that cannot do both in one round trip or commit, written once.
///
/// # Errors
/// As `ack_batch` and `dequeue`.
pub async fn ack_then_dequeue<Q: JobQueue + ?Sized>(
    store: &Q,
    tenant: &TenantId,
    done: &[Lease],
    queue: &QueueName,
    next: Dequeue,
) -> Result<AckedAndLeased> {
    next.validate()?;
    let acked = store.ack_batch(tenant, done).await?;
    let leased = store.dequeue(tenant, queue, next).await?;
    Ok(AckedAndLeased { acked, leased })
}

/// Checks a snooze delay (Q12).
///
/// # Errors
/// `InvalidInput` over [`MAX_DELAY`].
pub fn check_snooze(delay: Duration) -> Result<()> {
    if delay > MAX_DELAY {
        return Err(Error::invalid_input(format!(
            "a snooze of {} s is longer than the longest delay, {} s",
            delay.as_secs(),
            MAX_DELAY.as_secs()
        )));
    }
    Ok(())
}

/// Single-job conveniences over [`JobQueue`], for every queue (a blanket impl): they
/// are calls of the batch methods, so wrappers and adapters never write them.
#[async_trait]
pub trait JobQueueExt: JobQueue {
    /// Enqueues one job (Q1, Q6).
    ///
    /// # Errors
    /// `AlreadyExists` for an existing explicit id; `InvalidInput`.
    async fn enqueue(&self, tenant: &TenantId, queue: &QueueName, job: NewJob) -> Result<Enqueued> {
        let mut out = self.enqueue_batch(tenant, queue, vec![job]).await?;
        out.pop()
            .unwrap_or_else(|| Err(Error::backend("enqueue_batch returned no result")))
    }

    /// Acknowledges one job.
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease.
    async fn ack(&self, tenant: &TenantId, lease: &Lease) -> Result<()> {
        let mut out = self.ack_batch(tenant, std::slice::from_ref(lease)).await?;
        out.pop()
            .unwrap_or_else(|| Err(Error::backend("ack_batch returned no result")))
    }
}

impl<Q: JobQueue + ?Sized> JobQueueExt for Q {}

/// Moving jobs between backends (O4): kept apart from [`JobQueue`] so that the hot
/// path stays small and layers pass these calls through.
#[async_trait]
pub trait JobTransfer: Send + Sync + std::fmt::Debug {
    /// Every job of every queue, for export (O4), in queue then enqueue order: pending,
    /// scheduled and leased ones (leased ones exported as pending), and dead letters
    /// with their [`DeadState`].
    ///
    /// # Errors
    /// Backend errors.
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>>;

    /// Stores a dead letter as it was (import, O4): in the dead letters, never
    /// delivered until requeued. `job.id` is required.
    ///
    /// # Errors
    /// `AlreadyExists` when the id exists in the queue; `InvalidInput` without an id.
    async fn import_dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: NewJob,
        dead: DeadState,
    ) -> Result<()>;
}

impl crate::operation::Operation {
    /// [`JobQueue::enqueue_batch`]: repeatable when every job carries an id or a deduplication key, so a repeat finds it enqueued.
    pub const QUEUE_ENQUEUE: Self = Self::new(
        "queue.enqueue",
        crate::operation::Port::Queue,
        crate::operation::Repeat::WhenKeyed,
    );
    /// [`JobQueue::dequeue`]: a repeat after an unseen success would lease more jobs, and strand the first lease.
    pub const QUEUE_DEQUEUE: Self = Self::new(
        "queue.dequeue",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::heartbeat`]: extending a lease twice is extending it.
    pub const QUEUE_HEARTBEAT: Self = Self::new(
        "queue.heartbeat",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::ack_batch`]: a repeat after an unseen success answers `LeaseLost`.
    pub const QUEUE_ACK: Self = Self::new(
        "queue.ack",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::fail`]: a repeat after an unseen success answers `LeaseLost`.
    pub const QUEUE_FAIL: Self = Self::new(
        "queue.fail",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::dead`].
    pub const QUEUE_DEAD: Self = Self::new(
        "queue.dead",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::requeue`]: a repeat after an unseen success answers `NotFound`.
    pub const QUEUE_REQUEUE: Self = Self::new(
        "queue.requeue",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::stats`].
    pub const QUEUE_STATS: Self = Self::new(
        "queue.stats",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::wait`].
    pub const QUEUE_WAIT: Self = Self::new(
        "queue.wait",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::ack_and_dequeue`]: leases jobs, so it is never repeated (as dequeue).
    pub const QUEUE_ACK_AND_DEQUEUE: Self = Self::new(
        "queue.ack_and_dequeue",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::pause`]: pausing twice is pausing.
    pub const QUEUE_PAUSE: Self = Self::new(
        "queue.pause",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::resume`]: resuming twice is resuming.
    pub const QUEUE_RESUME: Self = Self::new(
        "queue.resume",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::snooze`]: a repeat after an unseen success answers `LeaseLost`.
    pub const QUEUE_SNOOZE: Self = Self::new(
        "queue.snooze",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::cancel`]: a repeat of a cancel that finished the job answers
    /// `PreconditionFailed`.
    pub const QUEUE_CANCEL: Self = Self::new(
        "queue.cancel",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::progress`]: recording the same progress twice is recording it.
    pub const QUEUE_PROGRESS: Self = Self::new(
        "queue.progress",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::complete`]: a repeat after an unseen success answers `LeaseLost`.
    pub const QUEUE_COMPLETE: Self = Self::new(
        "queue.complete",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`JobQueue::job`].
    pub const QUEUE_JOB: Self = Self::new(
        "queue.job",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::history`].
    pub const QUEUE_HISTORY: Self = Self::new(
        "queue.history",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::prune_finished`]: pruning again removes only what is due.
    pub const QUEUE_PRUNE_FINISHED: Self = Self::new(
        "queue.prune_finished",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::jobs`].
    pub const QUEUE_JOBS: Self = Self::new(
        "queue.jobs",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::running_by_key`].
    pub const QUEUE_RUNNING_BY_KEY: Self = Self::new(
        "queue.running_by_key",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`JobQueue::reenqueue`]: a repeat enqueues a second new job.
    pub const QUEUE_REENQUEUE: Self = Self::new(
        "queue.reenqueue",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_job_is_kept_at_least_its_period() {
        let hour = Duration::from_secs(3600);
        let job = NewJob::new(Value::Null).with_dedup_key("k");
        assert_eq!(job.keep_for_micros(), None);
        let unique = job.clone().with_unique_for(hour);
        assert_eq!(unique.keep_for_micros(), Some(3_600_000_000));
        assert_eq!(
            unique
                .clone()
                .with_keep_for(Duration::from_secs(60))
                .keep_for_micros(),
            Some(3_600_000_000)
        );
        assert_eq!(
            unique.with_keep_for(2 * hour).keep_for_micros(),
            Some(7_200_000_000)
        );
    }

    #[test]
    fn the_queue_limit_leaves_room_for_what_is_not_running() {
        let d = Dequeue::batch(10, Duration::from_secs(1));
        assert_eq!(d.room(1_000), 10);
        let limited = d.with_queue_limit(4);
        assert_eq!(limited.room(0), 4);
        assert_eq!(limited.room(3), 1);
        assert_eq!(limited.room(9), 0);
        assert!(limited.validate().is_ok());
        assert!(Dequeue::one(Duration::from_secs(1))
            .with_key_limit(0)
            .validate()
            .is_err());
    }

    #[test]
    fn unique_for_needs_a_dedup_key() {
        let lone = NewJob::new(Value::Null).with_unique_for(Duration::from_secs(1));
        assert_eq!(
            lone.validate().map_err(|e| e.kind()),
            Err(crate::ErrorKind::InvalidInput)
        );
        assert!(lone.with_dedup_key("k").validate().is_ok());
    }
}
