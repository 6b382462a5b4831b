//! A port implementation that answers `Unsupported` to everything, for the ports a
//! backend does not offer. Adapters put it in their [`StoreSet`](crate::StoreSet) so
//! that a host calling an absent port gets a typed, explained error.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::capabilities::Capabilities;
use crate::credential::CredentialStore;
use crate::document::{Document, DocumentFilter, DocumentStore};
use crate::error::{Error, Result};
use crate::ids::{
    CollectionName, CredentialKey, DocumentId, JobId, MetricName, QueueName, RunId, TenantId,
    WorkflowId,
};
use crate::metrics::{
    Baseline, MetricSummary, MetricsStore, MetricsTransfer, Pattern, PatternObservation, RunMetric,
    SeriesBucket, SeriesQuery,
};
use crate::operations::{Health, Operations, SchemaStatus, StoreStats};
use crate::queue::{
    DeadJob, Dequeue, Enqueued, ExportedJob, FailOutcome, JobFailure, JobQueue, JobTransfer, Lease,
    LeasedJob, NewJob, QueueStats,
};
use crate::rules::aggregate::DistributionSummary;
use crate::rules::cursor::{Page, PageRequest};
use crate::rules::retention::{PruneReport, RetentionPolicy, RunArchive};
use crate::run::{
    CompleteRun, EventStream, NewRun, Run, RunEvent, RunOutcome, RunQuery, RunStep, RunStore,
};
use crate::secret::Secret;
use crate::time::Timestamp;
use crate::transaction::Transactions;
use crate::workflow::{NewWorkflowVersion, VersionMeta, WorkflowStore, WorkflowVersion};

/// Answers `Unsupported` naming the backend and the port.
#[derive(Debug, Clone)]
pub struct UnsupportedStore {
    backend: String,
}

impl UnsupportedStore {
    /// For the backend called `backend`.
    #[must_use]
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
        }
    }

    fn no<T>(&self, what: &str) -> Result<T> {
        Err(Error::unsupported(&self.backend, what))
    }
}

#[async_trait]
impl WorkflowStore for UnsupportedStore {
    async fn put(&self, _: &TenantId, _: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.no("workflows")
    }
    async fn get(&self, _: &TenantId, _: &WorkflowId, _: u32) -> Result<WorkflowVersion> {
        self.no("workflows")
    }
    async fn latest(&self, _: &TenantId, _: &WorkflowId) -> Result<WorkflowVersion> {
        self.no("workflows")
    }
    async fn versions(&self, _: &TenantId, _: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.no("workflows")
    }
    async fn lineage(&self, _: &TenantId, _: &WorkflowId, _: u32) -> Result<Vec<VersionMeta>> {
        self.no("workflows")
    }
    async fn list(&self, _: &TenantId, _: PageRequest) -> Result<Page<VersionMeta>> {
        self.no("workflows")
    }
    async fn delete(&self, _: &TenantId, _: &WorkflowId, _: u32) -> Result<()> {
        self.no("workflows")
    }
}

#[async_trait]
impl RunStore for UnsupportedStore {
    async fn start(&self, _: &TenantId, _: NewRun) -> Result<Run> {
        self.no("runs")
    }
    async fn append(&self, _: &TenantId, _: &RunId, _: RunStep) -> Result<u64> {
        self.no("runs")
    }
    async fn finish(&self, _: &TenantId, _: &RunId, _: RunOutcome) -> Result<Run> {
        self.no("runs")
    }
    async fn store_complete(&self, _: &TenantId, _: CompleteRun) -> Result<()> {
        self.no("runs")
    }
    async fn store_complete_batch(
        &self,
        _: &TenantId,
        _: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        self.no("runs")
    }
    async fn get(&self, _: &TenantId, _: &RunId) -> Result<Run> {
        self.no("runs")
    }
    async fn get_complete(&self, _: &TenantId, _: &RunId) -> Result<CompleteRun> {
        self.no("runs")
    }
    async fn query(&self, _: &TenantId, _: RunQuery) -> Result<Page<Run>> {
        self.no("runs")
    }
    async fn events(&self, _: &TenantId, _: &RunId, _: u64) -> Result<Vec<RunEvent>> {
        self.no("runs")
    }
    async fn watch(&self, _: &TenantId, _: &RunId, _: u64) -> Result<EventStream> {
        self.no("watching runs")
    }
    async fn delete(&self, _: &TenantId, _: &RunId) -> Result<()> {
        self.no("runs")
    }

    async fn prune(
        &self,
        _: &TenantId,
        _: &RetentionPolicy,
        _: Timestamp,
        _: bool,
        _: Option<&mut (dyn RunArchive + Send)>,
    ) -> Result<PruneReport> {
        self.no("runs")
    }
}

#[async_trait]
impl MetricsStore for UnsupportedStore {
    async fn record(&self, _: &TenantId, _: RunMetric) -> Result<bool> {
        self.no("metrics")
    }
    async fn summary(&self, _: &TenantId, _: &WorkflowId, _: Option<u32>) -> Result<MetricSummary> {
        self.no("metrics")
    }
    async fn value_summary(
        &self,
        _: &TenantId,
        _: &WorkflowId,
        _: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        self.no("metrics")
    }
    async fn series(&self, _: &TenantId, _: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        self.no("metrics")
    }
    async fn baseline(
        &self,
        _: &TenantId,
        _: &WorkflowId,
        _: &MetricName,
        _: usize,
    ) -> Result<Option<Baseline>> {
        self.no("metrics")
    }
    async fn upsert_pattern(&self, _: &TenantId, _: PatternObservation) -> Result<Pattern> {
        self.no("metrics")
    }
    async fn patterns(&self, _: &TenantId, _: Option<&WorkflowId>) -> Result<Vec<Pattern>> {
        self.no("metrics")
    }
}

#[async_trait]
impl MetricsTransfer for UnsupportedStore {
    async fn export_records(&self, _: &TenantId) -> Result<Vec<RunMetric>> {
        self.no("metrics")
    }

    async fn put_pattern(&self, _: &TenantId, _: Pattern) -> Result<()> {
        self.no("metrics")
    }
}

#[async_trait]
impl CredentialStore for UnsupportedStore {
    async fn set(&self, _: &TenantId, _: &CredentialKey, _: &Secret) -> Result<()> {
        self.no("credentials")
    }
    async fn get(&self, _: &TenantId, _: &CredentialKey) -> Result<Secret> {
        self.no("credentials")
    }
    async fn delete(&self, _: &TenantId, _: &CredentialKey) -> Result<()> {
        self.no("credentials")
    }
    async fn list(&self, _: &TenantId) -> Result<Vec<CredentialKey>> {
        self.no("credentials")
    }
}

#[async_trait]
impl JobQueue for UnsupportedStore {
    async fn enqueue_batch(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        self.no("job queues")
    }
    async fn dequeue(&self, _: &TenantId, _: &QueueName, _: Dequeue) -> Result<Vec<LeasedJob>> {
        self.no("job queues")
    }
    async fn heartbeat(&self, _: &TenantId, _: &Lease, _: Duration) -> Result<Lease> {
        self.no("job queues")
    }
    async fn ack_batch(&self, _: &TenantId, _: &[Lease]) -> Result<Vec<Result<()>>> {
        self.no("job queues")
    }
    async fn fail(&self, _: &TenantId, _: &Lease, _: JobFailure) -> Result<FailOutcome> {
        self.no("job queues")
    }
    async fn dead(&self, _: &TenantId, _: &QueueName, _: usize) -> Result<Vec<DeadJob>> {
        self.no("job queues")
    }
    async fn requeue(&self, _: &TenantId, _: &QueueName, _: &JobId) -> Result<()> {
        self.no("job queues")
    }
    async fn stats(&self, _: &TenantId, _: &QueueName) -> Result<QueueStats> {
        self.no("job queues")
    }
    async fn wait(&self, _: &TenantId, _: &QueueName, _: Duration) -> Result<bool> {
        self.no("waiting on job queues")
    }
    async fn ack_and_dequeue(
        &self,
        _: &TenantId,
        _: &[Lease],
        _: &QueueName,
        _: Dequeue,
    ) -> Result<crate::AckedAndLeased> {
        self.no("job queues")
    }
    async fn pause(&self, _: &TenantId, _: &QueueName) -> Result<()> {
        self.no("pausing job queues")
    }
    async fn resume(&self, _: &TenantId, _: &QueueName) -> Result<()> {
        self.no("pausing job queues")
    }
    async fn snooze(&self, _: &TenantId, _: &Lease, _: Duration) -> Result<Timestamp> {
        self.no("snoozing jobs")
    }
    async fn cancel(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: &JobId,
    ) -> Result<crate::job_history::CancelOutcome> {
        self.no("cancelling jobs")
    }
    async fn progress(&self, _: &TenantId, _: &Lease, _: serde_json::Value) -> Result<()> {
        self.no("job progress")
    }
    async fn complete(&self, _: &TenantId, _: &Lease, _: serde_json::Value) -> Result<()> {
        self.no("job outputs")
    }
    async fn job(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: &JobId,
    ) -> Result<crate::job_history::JobInfo> {
        self.no("the finished-job history")
    }
    async fn history(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: &crate::job_history::HistoryQuery,
    ) -> Result<crate::rules::cursor::Page<crate::job_history::JobInfo>> {
        self.no("the finished-job history")
    }
    async fn prune_finished(&self, _: &TenantId, _: usize) -> Result<u64> {
        self.no("the finished-job history")
    }
    async fn reenqueue(&self, _: &TenantId, _: &QueueName, _: &JobId) -> Result<Enqueued> {
        self.no("the finished-job history")
    }
    async fn running_by_key(&self, _: &TenantId, _: &QueueName) -> Result<Vec<(String, u64)>> {
        self.no("concurrency limits")
    }
    async fn jobs(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: crate::JobStatus,
        _: usize,
    ) -> Result<Vec<crate::JobInfo>> {
        self.no("the finished-job history")
    }
}

#[async_trait]
impl JobTransfer for UnsupportedStore {
    async fn export_jobs(&self, _: &TenantId) -> Result<Vec<ExportedJob>> {
        self.no("job queues")
    }

    async fn import_dead(
        &self,
        _: &TenantId,
        _: &QueueName,
        _: crate::queue::NewJob,
        _: crate::queue::DeadState,
    ) -> Result<()> {
        self.no("job queues")
    }
}

#[async_trait]
impl DocumentStore for UnsupportedStore {
    async fn create(
        &self,
        _: &TenantId,
        _: &CollectionName,
        _: Option<DocumentId>,
        _: Value,
    ) -> Result<Document> {
        self.no("documents")
    }
    async fn get(&self, _: &TenantId, _: &CollectionName, _: &DocumentId) -> Result<Document> {
        self.no("documents")
    }
    async fn replace(
        &self,
        _: &TenantId,
        _: &CollectionName,
        _: &DocumentId,
        _: u64,
        _: Value,
    ) -> Result<Document> {
        self.no("documents")
    }
    async fn delete(
        &self,
        _: &TenantId,
        _: &CollectionName,
        _: &DocumentId,
        _: Option<u64>,
    ) -> Result<()> {
        self.no("documents")
    }
    async fn list(
        &self,
        _: &TenantId,
        _: &CollectionName,
        _: &DocumentFilter,
        _: PageRequest,
    ) -> Result<Page<Document>> {
        self.no("documents")
    }
    async fn collections(&self, _: &TenantId) -> Result<Vec<CollectionName>> {
        self.no("documents")
    }
}

#[async_trait]
impl Transactions for UnsupportedStore {
    async fn begin(&self, _: &TenantId) -> Result<Box<dyn crate::UnitOfWork>> {
        self.no("transactions")
    }
}

#[async_trait]
impl Operations for UnsupportedStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none(self.backend.clone())
    }
    async fn health(&self) -> Health {
        Health {
            backend: self.backend.clone(),
            ok: true,
            detail: "nothing to check: no port is offered".into(),
        }
    }
    async fn stats(&self, _: &TenantId) -> Result<StoreStats> {
        Ok(StoreStats::default())
    }
    async fn schema(&self) -> Result<SchemaStatus> {
        self.no("schema migrations")
    }
    async fn migrate(&self) -> Result<SchemaStatus> {
        self.no("schema migrations")
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        self.no("listing tenants")
    }
}

#[async_trait]
impl crate::schedule::ScheduleStore for UnsupportedStore {
    async fn put_schedule(
        &self,
        _: &TenantId,
        _: crate::schedule::NewSchedule,
    ) -> Result<crate::schedule::Schedule> {
        self.no("schedules")
    }
    async fn schedules(&self, _: &TenantId) -> Result<Vec<crate::schedule::Schedule>> {
        self.no("schedules")
    }
    async fn set_schedule_paused(
        &self,
        _: &TenantId,
        _: &crate::ids::ScheduleName,
        _: bool,
    ) -> Result<()> {
        self.no("schedules")
    }
    async fn delete_schedule(&self, _: &TenantId, _: &crate::ids::ScheduleName) -> Result<()> {
        self.no("schedules")
    }
    async fn due_schedules(&self, _: &TenantId, _: usize) -> Result<crate::schedule::DueSchedules> {
        self.no("schedules")
    }
    async fn advance_schedule(
        &self,
        _: &TenantId,
        _: &crate::ids::ScheduleName,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<bool> {
        self.no("schedules")
    }
}
