//! A tenant-scoped view: the same ports, with the tenant bound once.

use std::time::Duration;
use storage_ports::JobQueueExt as _;
use storage_ports::TransactionsExt;

use serde_json::Value;
use storage_ports::{
    CollectionName, CompleteRun, CredentialKey, Dequeue, Document, DocumentFilter, DocumentId,
    Enqueued, EventStream, FailOutcome, JobFailure, Lease, LeasedJob, MetricSummary, NewJob,
    NewRun, NewWorkflowVersion, Page, PageRequest, Pattern, PatternObservation, QueueName,
    QueueStats, Result, Run, RunEvent, RunId, RunMetric, RunOutcome, RunQuery, RunStep, Secret,
    StoreSet, StoreStats, TenantId, VersionMeta, WorkflowId, WorkflowVersion,
};

/// Every port, scoped to one tenant. Cheap to clone. Each method forwards to the port
/// of the same name; see the port traits for behaviour and errors.
#[derive(Debug, Clone)]
pub struct TenantView {
    set: StoreSet,
    tenant: TenantId,
}

#[allow(missing_docs, clippy::missing_errors_doc)]
impl TenantView {
    pub(crate) fn new(set: StoreSet, tenant: TenantId) -> Self {
        Self { set, tenant }
    }

    /// The tenant this view is bound to.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The unscoped ports, for operations this view does not forward.
    #[must_use]
    pub fn ports(&self) -> &StoreSet {
        &self.set
    }

    // Workflows.
    pub async fn put_workflow(&self, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.set.workflows.put(&self.tenant, new).await
    }
    pub async fn workflow(&self, id: &WorkflowId, version: u32) -> Result<WorkflowVersion> {
        self.set.workflows.get(&self.tenant, id, version).await
    }
    pub async fn latest_workflow(&self, id: &WorkflowId) -> Result<WorkflowVersion> {
        self.set.workflows.latest(&self.tenant, id).await
    }
    pub async fn workflow_versions(&self, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.set.workflows.versions(&self.tenant, id).await
    }
    pub async fn workflow_lineage(
        &self,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        self.set.workflows.lineage(&self.tenant, id, version).await
    }
    pub async fn list_workflows(&self, page: PageRequest) -> Result<Page<VersionMeta>> {
        self.set.workflows.list(&self.tenant, page).await
    }
    pub async fn delete_workflow(&self, id: &WorkflowId, version: u32) -> Result<()> {
        self.set.workflows.delete(&self.tenant, id, version).await
    }

    // Runs.
    pub async fn start_run(&self, new: NewRun) -> Result<Run> {
        self.set.runs.start(&self.tenant, new).await
    }
    pub async fn append_step(&self, run: &RunId, step: RunStep) -> Result<u64> {
        self.set.runs.append(&self.tenant, run, step).await
    }
    pub async fn finish_run(&self, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.set.runs.finish(&self.tenant, run, outcome).await
    }
    pub async fn store_runs(&self, runs: Vec<CompleteRun>) -> Result<Vec<Result<()>>> {
        self.set.runs.store_complete_batch(&self.tenant, runs).await
    }
    pub async fn run(&self, run: &RunId) -> Result<Run> {
        self.set.runs.get(&self.tenant, run).await
    }
    pub async fn complete_run(&self, run: &RunId) -> Result<CompleteRun> {
        self.set.runs.get_complete(&self.tenant, run).await
    }
    pub async fn query_runs(&self, query: RunQuery) -> Result<Page<Run>> {
        self.set.runs.query(&self.tenant, query).await
    }
    pub async fn run_events(&self, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        self.set.runs.events(&self.tenant, run, from_seq).await
    }
    pub async fn watch_run(&self, run: &RunId, from_seq: u64) -> Result<EventStream> {
        self.set.runs.watch(&self.tenant, run, from_seq).await
    }
    pub async fn delete_run(&self, run: &RunId) -> Result<()> {
        self.set.runs.delete(&self.tenant, run).await
    }

    // Metrics.
    pub async fn record_metric(&self, metric: RunMetric) -> Result<bool> {
        self.set.metrics.record(&self.tenant, metric).await
    }
    pub async fn metric_summary(
        &self,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        self.set
            .metrics
            .summary(&self.tenant, workflow, version)
            .await
    }
    pub async fn upsert_pattern(&self, observation: PatternObservation) -> Result<Pattern> {
        self.set
            .metrics
            .upsert_pattern(&self.tenant, observation)
            .await
    }
    pub async fn patterns(&self, workflow: Option<&WorkflowId>) -> Result<Vec<Pattern>> {
        self.set.metrics.patterns(&self.tenant, workflow).await
    }

    // Credentials.
    pub async fn set_credential(&self, key: &CredentialKey, value: &Secret) -> Result<()> {
        self.set.credentials.set(&self.tenant, key, value).await
    }
    pub async fn credential(&self, key: &CredentialKey) -> Result<Secret> {
        self.set.credentials.get(&self.tenant, key).await
    }
    pub async fn delete_credential(&self, key: &CredentialKey) -> Result<()> {
        self.set.credentials.delete(&self.tenant, key).await
    }
    pub async fn credential_keys(&self) -> Result<Vec<CredentialKey>> {
        self.set.credentials.list(&self.tenant).await
    }

    // Queue.
    pub async fn enqueue(&self, queue: &QueueName, job: NewJob) -> Result<Enqueued> {
        self.set.queue.enqueue(&self.tenant, queue, job).await
    }
    pub async fn enqueue_batch(
        &self,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        self.set
            .queue
            .enqueue_batch(&self.tenant, queue, jobs)
            .await
    }
    pub async fn dequeue(&self, queue: &QueueName, req: Dequeue) -> Result<Vec<LeasedJob>> {
        self.set.queue.dequeue(&self.tenant, queue, req).await
    }
    pub async fn heartbeat(&self, lease: &Lease, extend_by: Duration) -> Result<Lease> {
        self.set
            .queue
            .heartbeat(&self.tenant, lease, extend_by)
            .await
    }
    pub async fn ack(&self, lease: &Lease) -> Result<()> {
        self.set.queue.ack(&self.tenant, lease).await
    }
    pub async fn ack_batch(&self, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        self.set.queue.ack_batch(&self.tenant, leases).await
    }
    pub async fn fail(&self, lease: &Lease, failure: JobFailure) -> Result<FailOutcome> {
        self.set.queue.fail(&self.tenant, lease, failure).await
    }
    pub async fn queue_stats(&self, queue: &QueueName) -> Result<QueueStats> {
        self.set.queue.stats(&self.tenant, queue).await
    }
    pub async fn wait_for_work(&self, queue: &QueueName, timeout: Duration) -> Result<bool> {
        self.set.queue.wait(&self.tenant, queue, timeout).await
    }

    // Documents.
    pub async fn create_document(
        &self,
        c: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.set.documents.create(&self.tenant, c, id, body).await
    }
    pub async fn document(&self, c: &CollectionName, id: &DocumentId) -> Result<Document> {
        self.set.documents.get(&self.tenant, c, id).await
    }
    pub async fn replace_document(
        &self,
        c: &CollectionName,
        id: &DocumentId,
        rev: u64,
        body: Value,
    ) -> Result<Document> {
        self.set
            .documents
            .replace(&self.tenant, c, id, rev, body)
            .await
    }
    pub async fn delete_document(
        &self,
        c: &CollectionName,
        id: &DocumentId,
        rev: Option<u64>,
    ) -> Result<()> {
        self.set.documents.delete(&self.tenant, c, id, rev).await
    }
    pub async fn list_documents(
        &self,
        c: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>> {
        self.set.documents.list(&self.tenant, c, filter, page).await
    }

    // Transactions and operations.
    /// Runs `work` in a unit of work of this tenant (T2-T6): the seed's
    /// `storage.transaction(tx => ...)`. See [`TransactionsExt::unit_of_work`].
    ///
    /// # Errors
    /// `work`'s error, or the error of beginning or committing the unit.
    pub async fn transaction<T, E, F>(&self, work: F) -> std::result::Result<T, E>
    where
        T: Send,
        E: From<storage_ports::Error> + Send,
        F: for<'u> FnOnce(
                &'u mut dyn storage_ports::UnitOfWork,
            ) -> storage_ports::UnitFuture<'u, T, E>
            + Send,
    {
        self.set.transactions.unit_of_work(&self.tenant, work).await
    }
    pub async fn start_run_with_job(
        &self,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        self.set
            .transactions
            .start_run_with_job(&self.tenant, run, queue, job)
            .await
    }
    pub async fn stats(&self) -> Result<StoreStats> {
        self.set.operations.stats(&self.tenant).await
    }
}
