//! The maps behind the memory adapter, per tenant.

use std::collections::{BTreeMap, HashMap};

use storage_ports::{
    CollectionName, CredentialKey, Distribution, Document, DocumentId, JobId, MetricName, NewJob,
    Pattern, QueueName, Run, RunAggregate, RunEvent, RunId, RunMetric, Secret, TenantId, Timestamp,
    WorkflowId, WorkflowVersion,
};

#[derive(Debug, Default)]
pub(crate) struct State {
    pub tenants: HashMap<TenantId, TenantState>,
    /// Fencing tokens are unique across the store.
    pub next_token: u64,
    /// Enqueue order across the store (Q2 tie-break).
    pub next_job_seq: u64,
}

impl State {
    pub fn tenant(&mut self, t: &TenantId) -> &mut TenantState {
        self.tenants.entry(t.clone()).or_default()
    }
}

#[derive(Debug, Default)]
pub(crate) struct TenantState {
    pub workflows: BTreeMap<WorkflowId, WorkflowState>,
    pub runs: HashMap<RunId, RunRecord>,
    pub metrics: MetricsState,
    pub credentials: BTreeMap<CredentialKey, Secret>,
    pub jobs: HashMap<(QueueName, JobId), Job>,
    /// Paused queues (Q11).
    pub paused: std::collections::HashSet<QueueName>,
    pub documents: BTreeMap<CollectionName, BTreeMap<DocumentId, Document>>,
    /// Schedules (Q19).
    pub schedules: BTreeMap<storage_ports::ScheduleName, storage_ports::Schedule>,
}

#[derive(Debug, Default)]
pub(crate) struct WorkflowState {
    /// Highest version ever assigned, deleted ones included (W3).
    pub high_water: u32,
    pub versions: BTreeMap<u32, WorkflowVersion>,
}

#[derive(Debug, Clone)]
pub(crate) struct RunRecord {
    pub run: Run,
    pub events: Vec<RunEvent>,
}

#[derive(Debug, Default)]
pub(crate) struct MetricsState {
    pub records: BTreeMap<RunId, RunMetric>,
    pub aggregates: HashMap<(WorkflowId, u32), RunAggregate>,
    pub values: HashMap<(WorkflowId, MetricName), Distribution>,
    pub patterns: BTreeMap<(WorkflowId, String, String), Pattern>,
}

#[derive(Debug, Clone)]
pub(crate) enum JobState {
    Ready,
    Leased { token: u64, expires_at: Timestamp },
    Dead { error: String, died_at: Timestamp },
    Completed { at: Timestamp },
    Cancelled { at: Timestamp },
}

impl JobState {
    /// Whether the job may still run: ready or leased.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Ready | Self::Leased { .. })
    }

    /// When the job finished, if it did.
    pub fn finished_at(&self) -> Option<Timestamp> {
        match self {
            Self::Dead { died_at: at, .. } | Self::Completed { at } | Self::Cancelled { at } => {
                Some(*at)
            }
            Self::Ready | Self::Leased { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub spec: NewJob,
    pub run_at: Timestamp,
    pub enqueued_at: Timestamp,
    pub seq: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub state: JobState,
    /// The last progress recorded (Q16).
    pub progress: Option<serde_json::Value>,
    /// The output it was acked with (Q16).
    pub output: Option<serde_json::Value>,
    /// A cancel was asked for while it ran (Q14).
    pub cancel_requested: bool,
}
