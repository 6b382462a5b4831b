//! What each port operation is, declared once: its name, its port, and whether a
//! repeat after an unknown outcome is safe. The layers read it (the retry layer asks
//! [`Operation::repeat`], tracing and metrics label with [`Operation::name`]), and so
//! do the docs (`docs/architecture.md` lists [`Operation::ALL`]).
//!
//! The constants live beside the methods they describe (`Operation::WORKFLOWS_PUT` in
//! `workflow.rs`, and so on); [`Operation::ALL`] gathers them.

use std::fmt;

use crate::concern::Concern;

/// The port an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// [`crate::WorkflowStore`].
    Workflows,
    /// [`crate::RunStore`].
    Runs,
    /// [`crate::MetricsStore`].
    Metrics,
    /// [`crate::CredentialStore`].
    Credentials,
    /// [`crate::JobQueue`].
    Queue,
    /// [`crate::DocumentStore`].
    Documents,
    /// [`crate::Transactions`].
    Transactions,
    /// [`crate::Operations`].
    Operations,
}

impl Port {
    /// The concern whose backend answers this port's calls. Transactions are kept by
    /// the runs backend (which must also keep the queue); operations span every
    /// concern and have none.
    #[must_use]
    pub fn concern(self) -> Option<Concern> {
        match self {
            Self::Workflows => Some(Concern::Workflows),
            Self::Runs | Self::Transactions => Some(Concern::Runs),
            Self::Metrics => Some(Concern::Metrics),
            Self::Credentials => Some(Concern::Credentials),
            Self::Queue => Some(Concern::Queue),
            Self::Documents => Some(Concern::Documents),
            Self::Operations => None,
        }
    }
}

/// Whether a call may be repeated after a failure whose effect is unknown (the
/// connection died after the statement was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Reads, and writes that mean the same when repeated (record a run's metrics, set
    /// a credential, extend a lease).
    Safe,
    /// Safe when the caller named what the call writes (a workflow version, an id or a
    /// deduplication key on every job): a repeat then finds it written. Decided per
    /// call by the forwarding code, which sees the arguments.
    WhenKeyed,
    /// Could take effect twice (an append, a dequeue, an ack): never repeated.
    Never,
}

/// One port operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation {
    /// `port.method`, e.g. `workflows.put`: stable, used in errors, spans and metric
    /// labels.
    pub name: &'static str,
    /// The port it belongs to.
    pub port: Port,
    /// Whether a repeat after an unknown outcome is safe.
    pub repeat: Repeat,
}

impl Operation {
    /// An operation descriptor.
    #[must_use]
    pub const fn new(name: &'static str, port: Port, repeat: Repeat) -> Self {
        Self { name, port, repeat }
    }

    /// Whether this call may be repeated: `keyed` says whether the caller named what
    /// it writes (only read for [`Repeat::WhenKeyed`]).
    #[must_use]
    pub fn may_repeat(&self, keyed: bool) -> bool {
        match self.repeat {
            Repeat::Safe => true,
            Repeat::WhenKeyed => keyed,
            Repeat::Never => false,
        }
    }

    /// Every operation of every port, in port order.
    pub const ALL: [Self; 69] = [
        Self::WORKFLOWS_PUT,
        Self::WORKFLOWS_GET,
        Self::WORKFLOWS_LATEST,
        Self::WORKFLOWS_VERSIONS,
        Self::WORKFLOWS_LINEAGE,
        Self::WORKFLOWS_LIST,
        Self::WORKFLOWS_DELETE,
        Self::RUNS_START,
        Self::RUNS_APPEND,
        Self::RUNS_FINISH,
        Self::RUNS_STORE_COMPLETE,
        Self::RUNS_STORE_COMPLETE_BATCH,
        Self::RUNS_GET,
        Self::RUNS_GET_COMPLETE,
        Self::RUNS_QUERY,
        Self::RUNS_EVENTS,
        Self::RUNS_WATCH,
        Self::RUNS_DELETE,
        Self::RUNS_PRUNE,
        Self::METRICS_RECORD,
        Self::METRICS_SUMMARY,
        Self::METRICS_VALUE_SUMMARY,
        Self::METRICS_SERIES,
        Self::METRICS_BASELINE,
        Self::METRICS_UPSERT_PATTERN,
        Self::METRICS_PATTERNS,
        Self::CREDENTIALS_SET,
        Self::CREDENTIALS_GET,
        Self::CREDENTIALS_DELETE,
        Self::CREDENTIALS_LIST,
        Self::QUEUE_ENQUEUE,
        Self::QUEUE_DEQUEUE,
        Self::QUEUE_HEARTBEAT,
        Self::QUEUE_ACK,
        Self::QUEUE_FAIL,
        Self::QUEUE_DEAD,
        Self::QUEUE_REQUEUE,
        Self::QUEUE_STATS,
        Self::QUEUE_WAIT,
        Self::QUEUE_ACK_AND_DEQUEUE,
        Self::QUEUE_PAUSE,
        Self::QUEUE_RESUME,
        Self::QUEUE_SNOOZE,
        Self::QUEUE_CANCEL,
        Self::QUEUE_PROGRESS,
        Self::QUEUE_COMPLETE,
        Self::QUEUE_JOB,
        Self::QUEUE_HISTORY,
        Self::QUEUE_PRUNE_FINISHED,
        Self::QUEUE_REENQUEUE,
        Self::QUEUE_RUNNING_BY_KEY,
        Self::QUEUE_JOBS,
        Self::QUEUE_PUT_SCHEDULE,
        Self::QUEUE_SCHEDULES,
        Self::QUEUE_PAUSE_SCHEDULE,
        Self::QUEUE_DELETE_SCHEDULE,
        Self::QUEUE_DUE_SCHEDULES,
        Self::QUEUE_ADVANCE_SCHEDULE,
        Self::DOCUMENTS_CREATE,
        Self::DOCUMENTS_GET,
        Self::DOCUMENTS_REPLACE,
        Self::DOCUMENTS_DELETE,
        Self::DOCUMENTS_LIST,
        Self::DOCUMENTS_COLLECTIONS,
        Self::TRANSACTIONS_BEGIN,
        Self::OPERATIONS_STATS,
        Self::OPERATIONS_SCHEMA,
        Self::OPERATIONS_MIGRATE,
        Self::OPERATIONS_TENANTS,
    ];
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed_by_their_port() {
        let mut seen = std::collections::HashSet::new();
        for op in Operation::ALL {
            assert!(seen.insert(op.name), "{} twice", op.name);
            let prefix = match op.port {
                Port::Workflows => "workflows.",
                Port::Runs => "runs.",
                Port::Metrics => "metrics.",
                Port::Credentials => "credentials.",
                Port::Queue => "queue.",
                Port::Documents => "documents.",
                Port::Transactions => "transactions.",
                Port::Operations => "operations.",
            };
            assert!(
                op.name.starts_with(prefix),
                "{} is not under {prefix}",
                op.name
            );
        }
    }

    #[test]
    fn repeat_decides_by_kind_and_key() {
        let cases = [
            (Repeat::Safe, false, true),
            (Repeat::Safe, true, true),
            (Repeat::WhenKeyed, false, false),
            (Repeat::WhenKeyed, true, true),
            (Repeat::Never, false, false),
            (Repeat::Never, true, false),
        ];
        for (repeat, keyed, want) in cases {
            let op = Operation::new("x.y", Port::Runs, repeat);
            assert_eq!(op.may_repeat(keyed), want, "{repeat:?} keyed={keyed}");
        }
    }

    #[test]
    fn writes_that_could_happen_twice_are_never_repeated() {
        for op in [
            Operation::RUNS_APPEND,
            Operation::RUNS_START,
            Operation::QUEUE_DEQUEUE,
            Operation::QUEUE_ACK,
            Operation::QUEUE_FAIL,
            Operation::DOCUMENTS_CREATE,
            Operation::METRICS_UPSERT_PATTERN,
        ] {
            assert_eq!(op.repeat, Repeat::Never, "{op}");
        }
    }
}
