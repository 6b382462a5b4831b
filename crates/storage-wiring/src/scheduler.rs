//! The scheduler (Q19): fires the due schedules of the queue backend, on every node
//! that runs it, with no leader.
//!
//! ```yaml
//! scheduler:
//!   every_ms: 1000          # how often each node looks; default 1000
//!   tenants: [acme]         # default: every tenant the store lists
//! ```
//!
//! A round asks the backend which schedules are due (its clock decides), and for each
//! enqueues the tick's job ([`storage_ports::rules::schedule::tick_job`]: unique on
//! the schedule and the tick, Q17) and then moves the schedule to its next tick with a
//! compare-and-set. Nodes that see the same tick store one job between them (the
//! unique enqueue), and one of them moves the schedule (the compare-and-set); a node
//! that crashes between the two leaves the tick for the next round, whose enqueue
//! finds the job already there. A round that took longer than [`STALE_ROUND`] since
//! its read stops, so a node paused mid-round (a long GC, a suspended VM) does not act
//! on what it read long ago.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use storage_ports::rules::schedule::{plan, tick_job};
use storage_ports::{ErrorKind, JobQueueExt as _, Result, StoreSet, TenantId};

/// A round stops acting on its read after this long.
pub const STALE_ROUND: Duration = Duration::from_secs(10);

/// Due schedules one round reads per tenant, at most.
pub const ROUND_LIMIT: usize = 100;

/// How often the scheduler looks, and for which tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Milliseconds between rounds (at least 10).
    #[serde(default = "default_every_ms")]
    pub every_ms: u64,
    /// Which tenants; every tenant the store lists when absent.
    #[serde(default)]
    pub tenants: Option<Vec<TenantId>>,
}

fn default_every_ms() -> u64 {
    1000
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            every_ms: default_every_ms(),
            tenants: None,
        }
    }
}

/// What one round did for one tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Ticks whose job this round stored.
    pub fired: usize,
    /// Ticks whose job another scheduler had stored already.
    pub deduplicated: usize,
    /// Past ticks skipped by their schedule's catch-up policy.
    pub skipped: usize,
    /// Schedules this round moved to their next tick (the others were moved by
    /// another scheduler).
    pub advanced: usize,
}

/// One round for `tenant`: fires what is due and advances it.
///
/// # Errors
/// The first port error; what was done before it stays done, and the next round
/// picks up the rest.
pub async fn fire_due(set: &StoreSet, tenant: &TenantId) -> Result<FireReport> {
    let started = Instant::now();
    let due = set.schedules.due_schedules(tenant, ROUND_LIMIT).await?;
    let mut report = FireReport::default();
    for schedule in &due.schedules {
        if started.elapsed() > STALE_ROUND {
            tracing::warn!(%tenant, "scheduler: the round is stale; the next one goes on");
            break;
        }
        let Some(step) = plan(schedule, due.now)? else {
            continue;
        };
        match step.fire {
            Some(tick) => {
                let job = tick_job(schedule, tick)?;
                match set.queue.enqueue(tenant, &schedule.spec.queue, job).await {
                    Ok(e) if e.deduplicated => report.deduplicated += 1,
                    Ok(_) => report.fired += 1,
                    // The tick's id is taken by a job that is no longer unique-held:
                    // it was stored, so the tick is done.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => report.deduplicated += 1,
                    Err(e) => return Err(e),
                }
            }
            None => report.skipped += 1,
        }
        if set
            .schedules
            .advance_schedule(tenant, &schedule.spec.name, schedule.next_at, step.next_at)
            .await?
        {
            report.advanced += 1;
        }
    }
    Ok(report)
}

/// The running scheduler; dropping it stops it.
pub type SchedulerTask = crate::background::BackgroundTask;

/// One round over the configured tenants, each fired on its own.
async fn round(set: &StoreSet, config: &SchedulerConfig) {
    let Some(tenants) = crate::background::tenants(set, config.tenants.as_ref(), "scheduler").await
    else {
        return;
    };
    for t in &tenants {
        match fire_due(set, t).await {
            Ok(r) if r.fired > 0 || r.skipped > 0 => {
                tracing::info!(tenant = %t, fired = r.fired, skipped = r.skipped, "scheduler: fired schedules");
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => {}
            Err(e) => {
                tracing::warn!(tenant = %t, error = %e, "scheduler: round failed; the next one retries");
            }
        }
    }
}

/// Starts the scheduler on the current tokio runtime.
pub(crate) fn start(set: StoreSet, config: SchedulerConfig) -> SchedulerTask {
    let period = Duration::from_millis(config.every_ms.max(10));
    crate::background::every(period, move || {
        let (set, config) = (set.clone(), config.clone());
        async move { round(&set, &config).await }
    })
}
