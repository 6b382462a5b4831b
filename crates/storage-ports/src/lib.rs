//! # storage-ports
//!
//! The ports of flowstore: traits a host application depends on, the domain types they
//! exchange, validated ids, one error type, and the pure rules every adapter shares
//! (hashing, versioning, cursors, retention, sketches, backoff). No I/O lives here:
//! adapters implement the traits, `storage-wiring` chooses them.
//!
//! The behaviours each trait promises are listed in `# Behavior` sections and checked
//! by `storage-contract`, citing the spec ids (W4, Q7, ...).

pub mod adapter_kit;
pub mod capabilities;
pub mod clock;
pub mod concern;
pub mod credential;
pub mod document;
pub mod error;
pub mod ids;
pub mod job_history;
pub mod metrics;
pub mod operation;
pub mod operations;
pub mod queue;
pub mod rules;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod store_set;
pub mod time;
pub mod transaction;
pub mod transfer;
pub mod typed_collection;
pub mod typed_queue;
pub mod unit_of_work;
pub mod unsupported;
pub mod workflow;

pub use capabilities::Capabilities;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use concern::Concern;
pub use credential::CredentialStore;
pub use document::{Document, DocumentFilter, DocumentStore};
pub use error::{Error, ErrorKind, ErrorStatus, Result};
pub use ids::{
    CollectionName, CredentialKey, DocumentId, IdRule, JobId, MetricName, NodeId, QueueName, RunId,
    ScheduleName, TenantId, WorkflowId,
};
pub use job_history::{CancelOutcome, FinishedState, HistoryQuery, JobInfo, JobStatus};
pub use metrics::{
    Baseline, MetricSummary, MetricsStore, MetricsTransfer, Pattern, PatternObservation,
    RunAggregate, RunMetric, SeriesBucket, SeriesQuery,
};
pub use operation::{Operation, Port, Repeat};
pub use operations::{Health, Operations, SchemaStatus, StoreStats};
pub use queue::{
    AckedAndLeased, DeadJob, DeadState, Dequeue, Enqueued, ExportedJob, FailOutcome, JobFailure,
    JobQueue, JobQueueExt, JobTransfer, Lease, LeasedJob, NewJob, QueueStats,
};
pub use rules::aggregate::{Distribution, DistributionSummary};
pub use rules::backoff::Backoff;
pub use rules::content_hash::ContentHash;
pub use rules::cursor::{Cursor, Page, PageRequest};
pub use rules::limits::PayloadLimit;
pub use rules::retention::{JsonLinesArchive, PruneReport, RetentionPolicy, RunArchive};
pub use run::{
    CompleteRun, EventStream, NewRun, NodeExecution, NodeStatus, Run, RunError, RunEvent,
    RunEventKind, RunOutcome, RunQuery, RunStatus, RunStep, RunStore, VariableSnapshot,
};
pub use schedule::{CatchUp, DueSchedules, NewSchedule, Schedule, ScheduleStore, Timing};
pub use secret::Secret;
pub use store_set::StoreSet;
pub use time::Timestamp;
pub use transaction::{Transactions, TransactionsExt, UnitFuture};
pub use typed_collection::{Collection, Typed, TypedPage};
pub use typed_queue::{TypedBatch, TypedJob, TypedQueue};
pub use unit_of_work::UnitOfWork;
pub use unsupported::UnsupportedStore;
pub use workflow::{NewWorkflowVersion, VersionMeta, WorkflowStore, WorkflowVersion};
