//! Schedules: periodic jobs stored in the queue's backend (Q19).
//!
//! A schedule names a queue, a job template and a timing (a cron expression in a time
//! zone, or a fixed interval). Nothing here runs them: a scheduler (the one in
//! `storage-wiring`, or a host's own) asks the store which schedules are due on the
//! backend's clock, enqueues the tick's job, unique on (schedule, tick), and moves the
//! schedule to its next tick with a compare-and-set. Every node may run a scheduler:
//! the unique enqueue makes each tick one job however many nodes see it, and the
//! compare-and-set makes each schedule advance once per tick, with no leader
//! election. The rules that decide ticks are pure, in [`crate::rules::schedule`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{QueueName, ScheduleName, TenantId};
use crate::queue::NewJob;
use crate::time::Timestamp;

/// When a schedule's ticks fall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Timing {
    /// A cron expression (5 fields, or 6 with seconds first; POSIX/Vixie semantics),
    /// read in an IANA time zone (`UTC` when absent), so "9:00 on weekdays" follows
    /// daylight saving time.
    Cron {
        /// The expression, for example `*/5 * * * *`.
        expr: String,
        /// The zone, for example `Europe/Paris`.
        #[serde(default = "utc")]
        tz: String,
    },
    /// Every `every_ms` milliseconds from the time the schedule was stored.
    Every {
        /// The interval, at least 10 ms.
        every_ms: u64,
    },
}

fn utc() -> String {
    "UTC".to_owned()
}

/// What a scheduler does with ticks it finds already past when it looks (the
/// schedulers were down, or the schedule was paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Runs the latest past tick only if it is at most
    /// [`crate::rules::schedule::GRACE`] old; older ones are skipped (the default).
    #[default]
    Skip,
    /// Runs the latest past tick once, however old; the ticks before it are skipped.
    RunOne,
}

/// A schedule as a host stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSchedule {
    /// Name, unique in the tenant; storing a name again replaces that schedule.
    pub name: ScheduleName,
    /// The queue its jobs go to.
    pub queue: QueueName,
    /// When it ticks.
    pub timing: Timing,
    /// The job each tick enqueues: payload, priority, attempts, backoff, keep_for,
    /// concurrency key. Its id and dedup key are the scheduler's (they make the tick
    /// unique), so the template sets neither.
    pub job: NewJob,
    /// What to do with past ticks.
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// What was stored.
    #[serde(flatten)]
    pub spec: NewSchedule,
    /// When it was stored, on the backend's clock: `Every` ticks count from here.
    pub anchor: Timestamp,
    /// Its next tick; a scheduler fires it once the backend's clock reaches it.
    pub next_at: Timestamp,
    /// A paused schedule is never due.
    pub paused: bool,
}

/// The schedules due now, and the backend's clock that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueSchedules {
    /// The backend's time of the answer.
    pub now: Timestamp,
    /// Unpaused schedules whose `next_at` is at most `now`, earliest first.
    pub schedules: Vec<Schedule>,
}

/// The stored schedules of a queue backend (Q19). Capability `queue_schedules`.
#[async_trait]
pub trait ScheduleStore: Send + Sync + std::fmt::Debug {
    /// Stores a schedule, or replaces the one of that name (paused state kept), and
    /// sets its next tick from the backend's clock.
    ///
    /// # Errors
    /// `InvalidInput` for a timing that does not parse, an unknown time zone, an
    /// interval under 10 ms, or a template with an id or dedup key; `Unsupported`
    /// without the capability.
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule>;

    /// Every schedule of the tenant, by name.
    ///
    /// # Errors
    /// `Unsupported` without the capability; backend errors.
    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>>;

    /// Pauses (`true`) or resumes a schedule. A resumed schedule's past ticks follow
    /// its [`CatchUp`].
    ///
    /// # Errors
    /// `NotFound`; `Unsupported` without the capability.
    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()>;

    /// Removes a schedule; jobs it enqueued stay.
    ///
    /// # Errors
    /// `NotFound`; `Unsupported` without the capability.
    async fn delete_schedule(&self, tenant: &TenantId, name: &ScheduleName) -> Result<()>;

    /// Up to `limit` (1..=1000) unpaused schedules whose next tick has come, on the
    /// backend's clock, with that clock's reading.
    ///
    /// # Errors
    /// `InvalidInput` for `limit` out of range; `Unsupported` without the capability.
    async fn due_schedules(&self, tenant: &TenantId, limit: usize) -> Result<DueSchedules>;

    /// Moves a schedule's next tick from `from` to `to` if it is still `from` (a
    /// compare-and-set on the backend): `true` for the caller that moved it, `false`
    /// when another scheduler did first, or the schedule was replaced or removed.
    ///
    /// # Errors
    /// `Unsupported` without the capability; backend errors.
    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool>;
}

impl crate::operation::Operation {
    /// [`ScheduleStore::put_schedule`]: a replace with the same spec is harmless.
    pub const QUEUE_PUT_SCHEDULE: Self = Self::new(
        "queue.put_schedule",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`ScheduleStore::schedules`].
    pub const QUEUE_SCHEDULES: Self = Self::new(
        "queue.schedules",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`ScheduleStore::set_schedule_paused`].
    pub const QUEUE_PAUSE_SCHEDULE: Self = Self::new(
        "queue.set_schedule_paused",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`ScheduleStore::delete_schedule`]: a repeat after an unseen success is
    /// `NotFound`.
    pub const QUEUE_DELETE_SCHEDULE: Self = Self::new(
        "queue.delete_schedule",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Never,
    );
    /// [`ScheduleStore::due_schedules`].
    pub const QUEUE_DUE_SCHEDULES: Self = Self::new(
        "queue.due_schedules",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
    /// [`ScheduleStore::advance_schedule`]: a repeat after an unseen success answers
    /// `false`, which a scheduler reads as "another moved it" (the same outcome).
    pub const QUEUE_ADVANCE_SCHEDULE: Self = Self::new(
        "queue.advance_schedule",
        crate::operation::Port::Queue,
        crate::operation::Repeat::Safe,
    );
}
