//! [`Layered`]: every port of a [`StoreSet`] behind the configured layers.
//!
//! Each call goes through [`Layered::call`], which opens a span (`flowstore.call`, with
//! the operation, tenant and backend) when tracing is on, retries a retryable failure
//! of a repeatable call when retry is on, and ends with one event carrying the outcome
//! (ok or the error kind), the duration and the attempts. Spans and events carry names
//! and ids only: never a payload, never a secret, never an error message (messages may
//! quote ids a host considers private).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::rules::retention::{PruneReport, RetentionPolicy, RunArchive};
use storage_ports::{
    Baseline, Capabilities, CollectionName, CompleteRun, CredentialKey, CredentialStore, DeadJob,
    Dequeue, DistributionSummary, Document, DocumentFilter, DocumentId, DocumentStore, Enqueued,
    EventStream, ExportedJob, FailOutcome, Health, JobFailure, JobId, JobQueue, Lease, LeasedJob,
    MetricName, MetricSummary, MetricsStore, NewJob, NewRun, NewWorkflowVersion, Operations, Page,
    PageRequest, Pattern, PatternObservation, QueueName, QueueStats, Result, Run, RunEvent, RunId,
    RunMetric, RunOutcome, RunQuery, RunStep, RunStore, SchemaStatus, Secret, SeriesBucket,
    SeriesQuery, StoreSet, StoreStats, TenantId, Timestamp, Transactions, VersionMeta, WorkflowId,
    WorkflowStore, WorkflowVersion,
};
use tracing::Instrument;

use super::retry::Idempotence::{self, Once, Repeatable};
use super::LayerConfig;
use crate::config::Concern;

/// Every port of an inner set, behind the layers.
#[derive(Debug, Clone)]
pub struct Layered {
    inner: StoreSet,
    config: Arc<LayerConfig>,
    /// The backend name of each concern, for spans.
    backends: Arc<Vec<(Concern, String)>>,
}

impl Layered {
    /// `inner` with every port behind `config`'s layers. `backends` names each
    /// concern's backend for the spans (a concern missing from it is named by the
    /// set's capabilities).
    #[must_use]
    pub fn wrap(
        inner: StoreSet,
        config: LayerConfig,
        backends: Vec<(Concern, String)>,
    ) -> StoreSet {
        let me = Arc::new(Self {
            inner,
            config: Arc::new(config),
            backends: Arc::new(backends),
        });
        StoreSet {
            workflows: me.clone(),
            runs: me.clone(),
            metrics: me.clone(),
            credentials: me.clone(),
            queue: me.clone(),
            documents: me.clone(),
            transactions: me.clone(),
            operations: me,
        }
    }

    fn backend(&self, c: Concern) -> String {
        self.backends
            .iter()
            .find(|(k, _)| *k == c)
            .map_or_else(|| self.inner.capabilities().backend, |(_, b)| b.clone())
    }

    fn span(&self, c: Concern, op: &'static str, tenant: Option<&TenantId>) -> tracing::Span {
        if !self.config.tracing {
            return tracing::Span::none();
        }
        tracing::info_span!(
            "flowstore.call",
            op,
            tenant = tenant.map_or("-", TenantId::as_str),
            backend = %self.backend(c),
        )
    }

    /// Runs `f` once, or again after a retryable failure when `idem` allows and retry
    /// is on, inside the call's span.
    async fn call<T, F, Fut>(
        &self,
        c: Concern,
        op: &'static str,
        tenant: Option<&TenantId>,
        idem: Idempotence,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let span = self.span(c, op, tenant);
        let started = Instant::now();
        let mut attempt = 1;
        let result = loop {
            let r = f().instrument(span.clone()).await;
            match (&r, &self.config.retry) {
                (Err(e), Some(policy))
                    if e.is_retryable() && idem == Repeatable && attempt < policy.attempts =>
                {
                    let pause = policy.pause(attempt);
                    span.in_scope(|| {
                        tracing::warn!(kind = ?e.kind(), attempt, pause_ms = pause.as_millis() as u64, "retrying");
                    });
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                _ => break r,
            }
        };
        self.done(
            &span,
            started,
            attempt,
            result.as_ref().err().map(storage_ports::Error::kind),
        );
        result
    }

    fn done(
        &self,
        span: &tracing::Span,
        started: Instant,
        attempts: u32,
        failed: Option<storage_ports::ErrorKind>,
    ) {
        if !self.config.tracing {
            return;
        }
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| match failed {
            None => tracing::info!(outcome = "ok", elapsed_us, attempts, "done"),
            Some(kind) => tracing::info!(outcome = ?kind, elapsed_us, attempts, "done"),
        });
    }
}

#[async_trait]
impl WorkflowStore for Layered {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        // With an explicit version a repeat is the same put (W2); without, a repeat
        // after an unseen success would store the next version.
        let idem = if new.version.is_some() {
            Repeatable
        } else {
            Once
        };
        self.call(
            Concern::Workflows,
            "workflows.put",
            Some(tenant),
            idem,
            || self.inner.workflows.put(tenant, new.clone()),
        )
        .await
    }
    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        self.call(
            Concern::Workflows,
            "workflows.get",
            Some(tenant),
            Repeatable,
            || self.inner.workflows.get(tenant, id, version),
        )
        .await
    }
    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        self.call(
            Concern::Workflows,
            "workflows.latest",
            Some(tenant),
            Repeatable,
            || self.inner.workflows.latest(tenant, id),
        )
        .await
    }
    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.call(
            Concern::Workflows,
            "workflows.versions",
            Some(tenant),
            Repeatable,
            || self.inner.workflows.versions(tenant, id),
        )
        .await
    }
    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        self.call(
            Concern::Workflows,
            "workflows.lineage",
            Some(tenant),
            Repeatable,
            || self.inner.workflows.lineage(tenant, id, version),
        )
        .await
    }
    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        self.call(
            Concern::Workflows,
            "workflows.list",
            Some(tenant),
            Repeatable,
            || self.inner.workflows.list(tenant, page.clone()),
        )
        .await
    }
    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        self.call(
            Concern::Workflows,
            "workflows.delete",
            Some(tenant),
            Once,
            || self.inner.workflows.delete(tenant, id, version),
        )
        .await
    }
}

#[async_trait]
impl RunStore for Layered {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.call(Concern::Runs, "runs.start", Some(tenant), Once, || {
            self.inner.runs.start(tenant, new.clone())
        })
        .await
    }
    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.call(Concern::Runs, "runs.append", Some(tenant), Once, || {
            self.inner.runs.append(tenant, run, step.clone())
        })
        .await
    }
    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.call(Concern::Runs, "runs.finish", Some(tenant), Once, || {
            self.inner.runs.finish(tenant, run, outcome.clone())
        })
        .await
    }
    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.call(
            Concern::Runs,
            "runs.store_complete",
            Some(tenant),
            Once,
            || self.inner.runs.store_complete(tenant, run.clone()),
        )
        .await
    }
    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        self.call(
            Concern::Runs,
            "runs.store_complete_batch",
            Some(tenant),
            Once,
            || self.inner.runs.store_complete_batch(tenant, runs.clone()),
        )
        .await
    }
    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        self.call(Concern::Runs, "runs.get", Some(tenant), Repeatable, || {
            self.inner.runs.get(tenant, run)
        })
        .await
    }
    async fn get_complete(&self, tenant: &TenantId, run: &RunId) -> Result<CompleteRun> {
        self.call(
            Concern::Runs,
            "runs.get_complete",
            Some(tenant),
            Repeatable,
            || self.inner.runs.get_complete(tenant, run),
        )
        .await
    }
    async fn query(&self, tenant: &TenantId, query: RunQuery) -> Result<Page<Run>> {
        self.call(
            Concern::Runs,
            "runs.query",
            Some(tenant),
            Repeatable,
            || self.inner.runs.query(tenant, query.clone()),
        )
        .await
    }
    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        self.call(
            Concern::Runs,
            "runs.events",
            Some(tenant),
            Repeatable,
            || self.inner.runs.events(tenant, run, from_seq),
        )
        .await
    }
    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        self.call(
            Concern::Runs,
            "runs.watch",
            Some(tenant),
            Repeatable,
            || self.inner.runs.watch(tenant, run, from_seq),
        )
        .await
    }
    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        self.call(Concern::Runs, "runs.delete", Some(tenant), Once, || {
            self.inner.runs.delete(tenant, run)
        })
        .await
    }
    async fn prune(
        &self,
        tenant: &TenantId,
        policy: &RetentionPolicy,
        now: Timestamp,
        dry_run: bool,
        archive: Option<&mut (dyn RunArchive + Send)>,
    ) -> Result<PruneReport> {
        // Once, and by hand: the archive is borrowed for exactly one attempt.
        let span = self.span(Concern::Runs, "runs.prune", Some(tenant));
        let started = Instant::now();
        let r = self
            .inner
            .runs
            .prune(tenant, policy, now, dry_run, archive)
            .instrument(span.clone())
            .await;
        self.done(
            &span,
            started,
            1,
            r.as_ref().err().map(storage_ports::Error::kind),
        );
        r
    }
}

#[async_trait]
impl MetricsStore for Layered {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        // Idempotent per run (M1): a repeat after an unseen success answers false.
        self.call(
            Concern::Metrics,
            "metrics.record",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.record(tenant, metric.clone()),
        )
        .await
    }
    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        self.call(
            Concern::Metrics,
            "metrics.summary",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.summary(tenant, workflow, version),
        )
        .await
    }
    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        self.call(
            Concern::Metrics,
            "metrics.value_summary",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.value_summary(tenant, workflow, name),
        )
        .await
    }
    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        self.call(
            Concern::Metrics,
            "metrics.series",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.series(tenant, query.clone()),
        )
        .await
    }
    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>> {
        self.call(
            Concern::Metrics,
            "metrics.baseline",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.baseline(tenant, workflow, name, last_n),
        )
        .await
    }
    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern> {
        // Counts occurrences: a repeat would count one twice.
        self.call(
            Concern::Metrics,
            "metrics.upsert_pattern",
            Some(tenant),
            Once,
            || {
                self.inner
                    .metrics
                    .upsert_pattern(tenant, observation.clone())
            },
        )
        .await
    }
    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        self.call(
            Concern::Metrics,
            "metrics.put_pattern",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.put_pattern(tenant, pattern.clone()),
        )
        .await
    }
    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        self.call(
            Concern::Metrics,
            "metrics.patterns",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.patterns(tenant, workflow),
        )
        .await
    }
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        self.call(
            Concern::Metrics,
            "metrics.export_records",
            Some(tenant),
            Repeatable,
            || self.inner.metrics.export_records(tenant),
        )
        .await
    }
}

#[async_trait]
impl CredentialStore for Layered {
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()> {
        self.call(
            Concern::Credentials,
            "credentials.set",
            Some(tenant),
            Repeatable,
            || self.inner.credentials.set(tenant, key, value),
        )
        .await
    }
    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret> {
        self.call(
            Concern::Credentials,
            "credentials.get",
            Some(tenant),
            Repeatable,
            || self.inner.credentials.get(tenant, key),
        )
        .await
    }
    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        self.call(
            Concern::Credentials,
            "credentials.delete",
            Some(tenant),
            Once,
            || self.inner.credentials.delete(tenant, key),
        )
        .await
    }
    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>> {
        self.call(
            Concern::Credentials,
            "credentials.list",
            Some(tenant),
            Repeatable,
            || self.inner.credentials.list(tenant),
        )
        .await
    }
}

#[async_trait]
impl JobQueue for Layered {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        // Repeatable only when every job carries an id or a deduplication key, so a
        // repeat finds what the first attempt stored.
        let idem = if jobs.iter().all(|j| j.id.is_some() || j.dedup_key.is_some()) {
            Repeatable
        } else {
            Once
        };
        self.call(Concern::Queue, "queue.enqueue", Some(tenant), idem, || {
            self.inner.queue.enqueue_batch(tenant, queue, jobs.clone())
        })
        .await
    }
    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        // Leases jobs: a repeat after an unseen success would strand those leases
        // until they expire; the queue stays correct, but it is not repeated here.
        self.call(Concern::Queue, "queue.dequeue", Some(tenant), Once, || {
            self.inner.queue.dequeue(tenant, queue, req.clone())
        })
        .await
    }
    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        self.call(
            Concern::Queue,
            "queue.heartbeat",
            Some(tenant),
            Repeatable,
            || self.inner.queue.heartbeat(tenant, lease, extend_by),
        )
        .await
    }
    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        self.call(Concern::Queue, "queue.ack", Some(tenant), Once, || {
            self.inner.queue.ack_batch(tenant, leases)
        })
        .await
    }
    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome> {
        self.call(Concern::Queue, "queue.fail", Some(tenant), Once, || {
            self.inner.queue.fail(tenant, lease, failure.clone())
        })
        .await
    }
    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        self.call(
            Concern::Queue,
            "queue.dead",
            Some(tenant),
            Repeatable,
            || self.inner.queue.dead(tenant, queue, limit),
        )
        .await
    }
    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        self.call(Concern::Queue, "queue.requeue", Some(tenant), Once, || {
            self.inner.queue.requeue(tenant, queue, job)
        })
        .await
    }
    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        self.call(
            Concern::Queue,
            "queue.stats",
            Some(tenant),
            Repeatable,
            || self.inner.queue.stats(tenant, queue),
        )
        .await
    }
    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool> {
        self.call(
            Concern::Queue,
            "queue.wait",
            Some(tenant),
            Repeatable,
            || self.inner.queue.wait(tenant, queue, timeout),
        )
        .await
    }
    async fn import_dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: NewJob,
        dead: storage_ports::DeadState,
    ) -> Result<()> {
        // Carries its id: a repeat finds it (a conflict the caller reads as present).
        self.call(
            Concern::Queue,
            "queue.import_dead",
            Some(tenant),
            Once,
            || {
                self.inner
                    .queue
                    .import_dead(tenant, queue, job.clone(), dead.clone())
            },
        )
        .await
    }
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>> {
        self.call(
            Concern::Queue,
            "queue.export",
            Some(tenant),
            Repeatable,
            || self.inner.queue.export_jobs(tenant),
        )
        .await
    }
}

#[async_trait]
impl DocumentStore for Layered {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.call(
            Concern::Documents,
            "documents.create",
            Some(tenant),
            Once,
            || {
                self.inner
                    .documents
                    .create(tenant, collection, id.clone(), body.clone())
            },
        )
        .await
    }
    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        self.call(
            Concern::Documents,
            "documents.get",
            Some(tenant),
            Repeatable,
            || self.inner.documents.get(tenant, collection, id),
        )
        .await
    }
    async fn replace(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document> {
        self.call(
            Concern::Documents,
            "documents.replace",
            Some(tenant),
            Once,
            || {
                self.inner.documents.replace(
                    tenant,
                    collection,
                    id,
                    expected_revision,
                    body.clone(),
                )
            },
        )
        .await
    }
    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        self.call(
            Concern::Documents,
            "documents.delete",
            Some(tenant),
            Once,
            || {
                self.inner
                    .documents
                    .delete(tenant, collection, id, expected_revision)
            },
        )
        .await
    }
    async fn list(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>> {
        self.call(
            Concern::Documents,
            "documents.list",
            Some(tenant),
            Repeatable,
            || {
                self.inner
                    .documents
                    .list(tenant, collection, filter, page.clone())
            },
        )
        .await
    }
    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        self.call(
            Concern::Documents,
            "documents.collections",
            Some(tenant),
            Repeatable,
            || self.inner.documents.collections(tenant),
        )
        .await
    }
}

#[async_trait]
impl Transactions for Layered {
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        self.call(
            Concern::Runs,
            "transactions.start_run_with_job",
            Some(tenant),
            Once,
            || {
                self.inner
                    .transactions
                    .start_run_with_job(tenant, run.clone(), queue, job.clone())
            },
        )
        .await
    }
}

#[async_trait]
impl Operations for Layered {
    fn capabilities(&self) -> Capabilities {
        self.inner.operations.capabilities()
    }
    async fn health(&self) -> Health {
        self.inner.operations.health().await
    }
    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        self.call(
            Concern::Runs,
            "operations.stats",
            Some(tenant),
            Repeatable,
            || self.inner.operations.stats(tenant),
        )
        .await
    }
    async fn schema(&self) -> Result<SchemaStatus> {
        self.call(Concern::Runs, "operations.schema", None, Repeatable, || {
            self.inner.operations.schema()
        })
        .await
    }
    async fn migrate(&self) -> Result<SchemaStatus> {
        self.call(
            Concern::Runs,
            "operations.migrate",
            None,
            Repeatable,
            || self.inner.operations.migrate(),
        )
        .await
    }
    async fn tenants(&self) -> Result<Vec<TenantId>> {
        self.call(
            Concern::Runs,
            "operations.tenants",
            None,
            Repeatable,
            || self.inner.operations.tenants(),
        )
        .await
    }
}
