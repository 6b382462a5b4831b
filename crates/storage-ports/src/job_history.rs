//! What a queue tells about one job and about the jobs it has finished (Q14-Q16):
//! cancel outcomes, a job's status, progress and output, and the finished-job
//! history with its query.
//!
//! A job is *finished* when it was completed (acked), cancelled or is dead. A finished
//! job whose [`NewJob::keep_for`](crate::NewJob::keep_for) is set stays in the
//! history that long after it finished, then [`JobQueue::prune_finished`] removes it;
//! without `keep_for`, a completed job is deleted at ack (the default, as before) and
//! a cancelled or dead one stays until it is requeued.
//!
//! [`JobQueue::prune_finished`]: crate::JobQueue::prune_finished

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{JobId, QueueName};
use crate::rules::cursor::{Cursor, PageRequest};
use crate::time::Timestamp;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Ready to run now (or its lease expired and it waits to be taken over).
    Pending,
    /// Waiting for a future run time (including retry backoff and snoozes).
    Scheduled,
    /// Leased, lease not expired.
    Running,
    /// Acknowledged by its holder (finished).
    Completed,
    /// Cancelled (finished, Q14).
    Cancelled,
    /// Out of attempts, or failed without retry (finished, Q5).
    Dead,
}

impl JobStatus {
    /// The stable lowercase name, as stored and printed.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Dead => "dead",
        }
    }

    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Scheduled,
        Self::Running,
        Self::Completed,
        Self::Cancelled,
        Self::Dead,
    ];

    /// Parses a stored or typed name.
    ///
    /// # Errors
    /// `InvalidInput` naming the accepted names.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown job status {s:?}: one of pending, scheduled, running, completed, cancelled, dead"
                ))
            })
    }

    /// Whether the job is finished: completed, cancelled or dead.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Dead)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job finished; the filter of [`HistoryQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishedState {
    /// Acknowledged.
    Completed,
    /// Cancelled.
    Cancelled,
    /// Dead.
    Dead,
}

impl FinishedState {
    /// Every finished state.
    pub const ALL: [Self; 3] = [Self::Completed, Self::Cancelled, Self::Dead];

    /// The stored name (the same as [`JobStatus::as_str`]).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    /// The status of a job finished this way.
    #[must_use]
    pub fn status(self) -> JobStatus {
        match self {
            Self::Completed => JobStatus::Completed,
            Self::Cancelled => JobStatus::Cancelled,
            Self::Dead => JobStatus::Dead,
        }
    }

    /// Parses a stored or typed name.
    ///
    /// # Errors
    /// `InvalidInput` naming the accepted names.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown finished state {s:?}: one of completed, cancelled, dead"
                ))
            })
    }
}

/// What [`JobQueue::cancel`](crate::JobQueue::cancel) did (Q14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The job was pending or scheduled: it is finished as cancelled and will never be
    /// delivered.
    Cancelled,
    /// The job is running: its holder is told at its next heartbeat, progress, ack,
    /// fail or snooze ([`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)), and an
    /// expired lease of it is finished as cancelled instead of being delivered again.
    Requested,
}

/// One job as the queue holds it: for inspection ([`JobQueue::job`]) and the
/// finished-job history ([`JobQueue::history`]).
///
/// [`JobQueue::job`]: crate::JobQueue::job
/// [`JobQueue::history`]: crate::JobQueue::history
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Queue.
    pub queue: QueueName,
    /// Job.
    pub job_id: JobId,
    /// Where it is in its life, on the backend's clock.
    pub status: JobStatus,
    /// Payload.
    pub payload: Value,
    /// Priority.
    pub priority: i32,
    /// Deliveries so far.
    pub attempts: u32,
    /// Attempts limit.
    pub max_attempts: u32,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
    /// When it finished; `None` while it is not finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The last progress its holder recorded (Q16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// The output its holder acked it with (Q16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The last failure's text (a retry's, or the death's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether a cancel was asked for while it ran (Q14).
    #[serde(default)]
    pub cancel_requested: bool,
    /// For a scheduled job, when it becomes due (its run-at time); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
    /// For a running job, when its lease expires unless its holder heartbeats, on
    /// the backend's clock; `None` otherwise. What an operator needs to tell a
    /// stuck worker from a slow one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
}

/// Which finished jobs [`JobQueue::history`](crate::JobQueue::history) lists: newest
/// finish first (then job id, descending), keyset-paged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only jobs finished this way; every finished job when `None`.
    pub state: Option<FinishedState>,
    /// The page.
    pub page: PageRequest,
}

impl HistoryQuery {
    /// The cursor kind of the history listing.
    pub const CURSOR_KIND: &'static str = "job-history";

    /// The first page of `limit` jobs, of every finished state.
    #[must_use]
    pub fn first(limit: usize) -> Self {
        Self {
            state: None,
            page: PageRequest::first(limit),
        }
    }

    /// Only jobs finished `state`.
    #[must_use]
    pub fn with_state(mut self, state: FinishedState) -> Self {
        self.state = Some(state);
        self
    }

    /// Starts after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.page.cursor = Some(cursor);
        self
    }

    /// The position the page starts after, `(finished_at in microseconds, job id)`,
    /// or `None` for the first page.
    ///
    /// # Errors
    /// `InvalidInput` for a cursor another listing issued.
    pub fn position(&self) -> Result<Option<HistoryPosition>> {
        self.page
            .cursor
            .as_ref()
            .map(|c| c.decode::<HistoryPosition>(Self::CURSOR_KIND))
            .transpose()
    }
}

/// A position in the history listing: a finish time in microseconds and a job id.
pub type HistoryPosition = (i64, String);

impl JobInfo {
    /// This job's position in the history listing.
    #[must_use]
    pub fn history_position(&self) -> HistoryPosition {
        (
            self.finished_at.map_or(0, Timestamp::as_micros),
            self.job_id.as_str().to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_parse_their_own_names_and_refuse_others() {
        for f in FinishedState::ALL {
            assert_eq!(FinishedState::parse(f.as_str()).ok(), Some(f));
            assert!(f.status().is_finished());
        }
        assert!(FinishedState::parse("running").is_err());
        assert!(!JobStatus::Running.is_finished());
    }

    #[test]
    fn a_history_cursor_from_another_listing_is_refused() {
        let q = HistoryQuery::first(10).after(Cursor::encode("runs", &(1, "a")));
        assert!(q.position().is_err());
        let q = HistoryQuery::first(10).after(Cursor::encode(
            HistoryQuery::CURSOR_KIND,
            &(5_i64, "j".to_owned()),
        ));
        assert_eq!(q.position().ok().flatten(), Some((5, "j".to_owned())));
    }
}
