//! [`Layered`]: every port of a [`StoreSet`] on top of one [`Intercept`]. This is the
//! only file that forwards port methods; a layer (tracing, retry, timeout, metrics)
//! implements [`Intercept`] and nothing else. The port traits have no default
//! methods, so forgetting one here does not compile; conveniences (`JobQueueExt`)
//! are blanket impls over the required methods, and the data-move ports
//! (`JobTransfer`, `MetricsTransfer`) pass through untouched.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::rules::retention::{PruneReport, RetentionPolicy, RunArchive};
use storage_ports::{
    Baseline, CancelOutcome, Capabilities, CollectionName, CompleteRun, Concern, CredentialKey,
    CredentialStore, DeadJob, Dequeue, DistributionSummary, Document, DocumentFilter, DocumentId,
    DocumentStore, Enqueued, EventStream, FailOutcome, Health, HistoryQuery, JobFailure, JobId,
    JobInfo, JobQueue, Lease, LeasedJob, MetricName, MetricSummary, MetricsStore, NewJob, NewRun,
    NewWorkflowVersion, Operation, Operations, Page, PageRequest, Pattern, PatternObservation,
    Port, QueueName, QueueStats, Result, Run, RunEvent, RunId, RunMetric, RunOutcome, RunQuery,
    RunStep, RunStore, SchemaStatus, Secret, SeriesBucket, SeriesQuery, StoreSet, StoreStats,
    TenantId, Timestamp, Transactions, VersionMeta, WorkflowId, WorkflowStore, WorkflowVersion,
};
use storage_ports::{DueSchedules, JobStatus, NewSchedule, Schedule, ScheduleName, ScheduleStore};

use super::intercept::{Call, CallFuture, Intercept, Next};

/// Every port of an inner set, each call through the layer `L`.
#[derive(Debug)]
pub struct Layered<L> {
    inner: StoreSet,
    layer: L,
    /// The backend name of each concern, for [`Call::backend`].
    backends: Vec<(Concern, String)>,
    /// The backend of calls without a concern (operations).
    whole: String,
}

impl<L: Intercept> Layered<L> {
    /// `inner` with every port call through `layer`. `backends` names each concern's
    /// backend (a concern missing from it is named by the set's capabilities).
    #[must_use]
    pub fn wrap(inner: StoreSet, layer: L, backends: Vec<(Concern, String)>) -> StoreSet {
        let whole = inner.capabilities().backend;
        let job_transfer = inner.job_transfer.clone();
        let metrics_transfer = inner.metrics_transfer.clone();
        let me = Arc::new(Self {
            inner,
            layer,
            backends,
            whole,
        });
        StoreSet {
            workflows: me.clone(),
            runs: me.clone(),
            metrics: me.clone(),
            credentials: me.clone(),
            queue: me.clone(),
            schedules: me.clone(),
            documents: me.clone(),
            transactions: me.clone(),
            operations: me,
            job_transfer,
            metrics_transfer,
        }
    }

    fn backend(&self, port: Port) -> &str {
        port.concern()
            .and_then(|c| self.backends.iter().find(|(k, _)| *k == c))
            .map_or(self.whole.as_str(), |(_, b)| b.as_str())
    }

    /// One call of `op` through the layer; `start` starts an attempt of the inner call.
    async fn call<'a, T: Send + 'a>(
        &'a self,
        op: Operation,
        tenant: Option<&'a TenantId>,
        keyed: bool,
        start: impl FnMut() -> CallFuture<'a, T> + Send + 'a,
    ) -> Result<T> {
        let call = Call {
            op,
            tenant,
            backend: self.backend(op.port),
            keyed,
        };
        self.layer.intercept(call, Next::new(start)).await
    }
}

#[async_trait]
impl<L: Intercept> WorkflowStore for Layered<L> {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        let keyed = new.version.is_some();
        self.call(Operation::WORKFLOWS_PUT, Some(tenant), keyed, move || {
            Box::pin(self.inner.workflows.put(tenant, new.clone()))
        })
        .await
    }
    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        self.call(Operation::WORKFLOWS_GET, Some(tenant), false, move || {
            Box::pin(self.inner.workflows.get(tenant, id, version))
        })
        .await
    }
    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        self.call(
            Operation::WORKFLOWS_LATEST,
            Some(tenant),
            false,
            move || Box::pin(self.inner.workflows.latest(tenant, id)),
        )
        .await
    }
    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.call(
            Operation::WORKFLOWS_VERSIONS,
            Some(tenant),
            false,
            move || Box::pin(self.inner.workflows.versions(tenant, id)),
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
            Operation::WORKFLOWS_LINEAGE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.workflows.lineage(tenant, id, version)),
        )
        .await
    }
    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        self.call(Operation::WORKFLOWS_LIST, Some(tenant), false, move || {
            Box::pin(self.inner.workflows.list(tenant, page.clone()))
        })
        .await
    }
    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        self.call(
            Operation::WORKFLOWS_DELETE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.workflows.delete(tenant, id, version)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> RunStore for Layered<L> {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.call(Operation::RUNS_START, Some(tenant), false, move || {
            Box::pin(self.inner.runs.start(tenant, new.clone()))
        })
        .await
    }
    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.call(Operation::RUNS_APPEND, Some(tenant), false, move || {
            Box::pin(self.inner.runs.append(tenant, run, step.clone()))
        })
        .await
    }
    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.call(Operation::RUNS_FINISH, Some(tenant), false, move || {
            Box::pin(self.inner.runs.finish(tenant, run, outcome.clone()))
        })
        .await
    }
    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.call(
            Operation::RUNS_STORE_COMPLETE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.runs.store_complete(tenant, run.clone())),
        )
        .await
    }
    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        self.call(
            Operation::RUNS_STORE_COMPLETE_BATCH,
            Some(tenant),
            false,
            move || Box::pin(self.inner.runs.store_complete_batch(tenant, runs.clone())),
        )
        .await
    }
    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        self.call(Operation::RUNS_GET, Some(tenant), false, move || {
            Box::pin(self.inner.runs.get(tenant, run))
        })
        .await
    }
    async fn get_complete(&self, tenant: &TenantId, run: &RunId) -> Result<CompleteRun> {
        self.call(
            Operation::RUNS_GET_COMPLETE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.runs.get_complete(tenant, run)),
        )
        .await
    }
    async fn query(&self, tenant: &TenantId, query: RunQuery) -> Result<Page<Run>> {
        self.call(Operation::RUNS_QUERY, Some(tenant), false, move || {
            Box::pin(self.inner.runs.query(tenant, query.clone()))
        })
        .await
    }
    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        self.call(Operation::RUNS_EVENTS, Some(tenant), false, move || {
            Box::pin(self.inner.runs.events(tenant, run, from_seq))
        })
        .await
    }
    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        self.call(Operation::RUNS_WATCH, Some(tenant), false, move || {
            Box::pin(self.inner.runs.watch(tenant, run, from_seq))
        })
        .await
    }
    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        self.call(Operation::RUNS_DELETE, Some(tenant), false, move || {
            Box::pin(self.inner.runs.delete(tenant, run))
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
        let call = Call {
            op: Operation::RUNS_PRUNE,
            tenant: Some(tenant),
            backend: self.backend(Port::Runs),
            keyed: false,
        };
        let runs = &self.inner.runs;
        let next = Next::once(move || runs.prune(tenant, policy, now, dry_run, archive));
        self.layer.intercept(call, next).await
    }
}

#[async_trait]
impl<L: Intercept> MetricsStore for Layered<L> {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        // Idempotent per run (M1): a repeat after an unseen success answers false.
        self.call(Operation::METRICS_RECORD, Some(tenant), false, move || {
            Box::pin(self.inner.metrics.record(tenant, metric.clone()))
        })
        .await
    }
    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        self.call(Operation::METRICS_SUMMARY, Some(tenant), false, move || {
            Box::pin(self.inner.metrics.summary(tenant, workflow, version))
        })
        .await
    }
    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        self.call(
            Operation::METRICS_VALUE_SUMMARY,
            Some(tenant),
            false,
            move || Box::pin(self.inner.metrics.value_summary(tenant, workflow, name)),
        )
        .await
    }
    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        self.call(Operation::METRICS_SERIES, Some(tenant), false, move || {
            Box::pin(self.inner.metrics.series(tenant, query.clone()))
        })
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
            Operation::METRICS_BASELINE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.metrics.baseline(tenant, workflow, name, last_n)),
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
            Operation::METRICS_UPSERT_PATTERN,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .metrics
                        .upsert_pattern(tenant, observation.clone()),
                )
            },
        )
        .await
    }
    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        self.call(
            Operation::METRICS_PATTERNS,
            Some(tenant),
            false,
            move || Box::pin(self.inner.metrics.patterns(tenant, workflow)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> CredentialStore for Layered<L> {
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()> {
        self.call(Operation::CREDENTIALS_SET, Some(tenant), false, move || {
            Box::pin(self.inner.credentials.set(tenant, key, value))
        })
        .await
    }
    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret> {
        self.call(Operation::CREDENTIALS_GET, Some(tenant), false, move || {
            Box::pin(self.inner.credentials.get(tenant, key))
        })
        .await
    }
    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        self.call(
            Operation::CREDENTIALS_DELETE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.credentials.delete(tenant, key)),
        )
        .await
    }
    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>> {
        self.call(
            Operation::CREDENTIALS_LIST,
            Some(tenant),
            false,
            move || Box::pin(self.inner.credentials.list(tenant)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> JobQueue for Layered<L> {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        let keyed = jobs.iter().all(|j| j.id.is_some() || j.dedup_key.is_some());
        self.call(Operation::QUEUE_ENQUEUE, Some(tenant), keyed, move || {
            Box::pin(self.inner.queue.enqueue_batch(tenant, queue, jobs.clone()))
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
        self.call(Operation::QUEUE_DEQUEUE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.dequeue(tenant, queue, req.clone()))
        })
        .await
    }
    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        self.call(Operation::QUEUE_HEARTBEAT, Some(tenant), false, move || {
            Box::pin(self.inner.queue.heartbeat(tenant, lease, extend_by))
        })
        .await
    }
    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        self.call(Operation::QUEUE_ACK, Some(tenant), false, move || {
            Box::pin(self.inner.queue.ack_batch(tenant, leases))
        })
        .await
    }
    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome> {
        self.call(Operation::QUEUE_FAIL, Some(tenant), false, move || {
            Box::pin(self.inner.queue.fail(tenant, lease, failure.clone()))
        })
        .await
    }
    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        self.call(Operation::QUEUE_DEAD, Some(tenant), false, move || {
            Box::pin(self.inner.queue.dead(tenant, queue, limit))
        })
        .await
    }
    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        self.call(Operation::QUEUE_REQUEUE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.requeue(tenant, queue, job))
        })
        .await
    }
    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        self.call(Operation::QUEUE_STATS, Some(tenant), false, move || {
            Box::pin(self.inner.queue.stats(tenant, queue))
        })
        .await
    }
    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool> {
        self.call(Operation::QUEUE_WAIT, Some(tenant), false, move || {
            Box::pin(self.inner.queue.wait(tenant, queue, timeout))
        })
        .await
    }
    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<storage_ports::AckedAndLeased> {
        self.call(
            Operation::QUEUE_ACK_AND_DEQUEUE,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .queue
                        .ack_and_dequeue(tenant, done, queue, next.clone()),
                )
            },
        )
        .await
    }
    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        self.call(Operation::QUEUE_PAUSE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.pause(tenant, queue))
        })
        .await
    }
    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        self.call(Operation::QUEUE_RESUME, Some(tenant), false, move || {
            Box::pin(self.inner.queue.resume(tenant, queue))
        })
        .await
    }
    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp> {
        self.call(Operation::QUEUE_SNOOZE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.snooze(tenant, lease, delay))
        })
        .await
    }
    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome> {
        self.call(Operation::QUEUE_CANCEL, Some(tenant), false, move || {
            Box::pin(self.inner.queue.cancel(tenant, queue, job))
        })
        .await
    }
    async fn progress(&self, tenant: &TenantId, lease: &Lease, progress: Value) -> Result<()> {
        // Fenced and the same value again: a repeat after an unseen success is harmless.
        self.call(Operation::QUEUE_PROGRESS, Some(tenant), true, move || {
            Box::pin(self.inner.queue.progress(tenant, lease, progress.clone()))
        })
        .await
    }
    async fn complete(&self, tenant: &TenantId, lease: &Lease, output: Value) -> Result<()> {
        self.call(Operation::QUEUE_COMPLETE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.complete(tenant, lease, output.clone()))
        })
        .await
    }
    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo> {
        self.call(Operation::QUEUE_JOB, Some(tenant), false, move || {
            Box::pin(self.inner.queue.job(tenant, queue, job))
        })
        .await
    }
    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>> {
        self.call(Operation::QUEUE_HISTORY, Some(tenant), false, move || {
            Box::pin(self.inner.queue.history(tenant, queue, query))
        })
        .await
    }
    async fn prune_finished(&self, tenant: &TenantId, max: usize) -> Result<u64> {
        self.call(
            Operation::QUEUE_PRUNE_FINISHED,
            Some(tenant),
            false,
            move || Box::pin(self.inner.queue.prune_finished(tenant, max)),
        )
        .await
    }
    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued> {
        self.call(Operation::QUEUE_REENQUEUE, Some(tenant), false, move || {
            Box::pin(self.inner.queue.reenqueue(tenant, queue, job))
        })
        .await
    }
    async fn jobs(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<JobInfo>> {
        self.call(Operation::QUEUE_JOBS, Some(tenant), false, move || {
            Box::pin(self.inner.queue.jobs(tenant, queue, status, limit))
        })
        .await
    }
    async fn running_by_key(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
    ) -> Result<Vec<(String, u64)>> {
        self.call(
            Operation::QUEUE_RUNNING_BY_KEY,
            Some(tenant),
            false,
            move || Box::pin(self.inner.queue.running_by_key(tenant, queue)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> ScheduleStore for Layered<L> {
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule> {
        self.call(
            Operation::QUEUE_PUT_SCHEDULE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.schedules.put_schedule(tenant, schedule.clone())),
        )
        .await
    }
    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>> {
        self.call(Operation::QUEUE_SCHEDULES, Some(tenant), false, move || {
            Box::pin(self.inner.schedules.schedules(tenant))
        })
        .await
    }
    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()> {
        self.call(
            Operation::QUEUE_PAUSE_SCHEDULE,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .schedules
                        .set_schedule_paused(tenant, name, paused),
                )
            },
        )
        .await
    }
    async fn delete_schedule(&self, tenant: &TenantId, name: &ScheduleName) -> Result<()> {
        self.call(
            Operation::QUEUE_DELETE_SCHEDULE,
            Some(tenant),
            false,
            move || Box::pin(self.inner.schedules.delete_schedule(tenant, name)),
        )
        .await
    }
    async fn due_schedules(&self, tenant: &TenantId, limit: usize) -> Result<DueSchedules> {
        self.call(
            Operation::QUEUE_DUE_SCHEDULES,
            Some(tenant),
            false,
            move || Box::pin(self.inner.schedules.due_schedules(tenant, limit)),
        )
        .await
    }
    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        self.call(
            Operation::QUEUE_ADVANCE_SCHEDULE,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .schedules
                        .advance_schedule(tenant, name, from, to),
                )
            },
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> DocumentStore for Layered<L> {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.call(
            Operation::DOCUMENTS_CREATE,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .documents
                        .create(tenant, collection, id.clone(), body.clone()),
                )
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
        self.call(Operation::DOCUMENTS_GET, Some(tenant), false, move || {
            Box::pin(self.inner.documents.get(tenant, collection, id))
        })
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
            Operation::DOCUMENTS_REPLACE,
            Some(tenant),
            false,
            move || {
                Box::pin(self.inner.documents.replace(
                    tenant,
                    collection,
                    id,
                    expected_revision,
                    body.clone(),
                ))
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
            Operation::DOCUMENTS_DELETE,
            Some(tenant),
            false,
            move || {
                Box::pin(
                    self.inner
                        .documents
                        .delete(tenant, collection, id, expected_revision),
                )
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
        self.call(Operation::DOCUMENTS_LIST, Some(tenant), false, move || {
            Box::pin(
                self.inner
                    .documents
                    .list(tenant, collection, filter, page.clone()),
            )
        })
        .await
    }
    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        self.call(
            Operation::DOCUMENTS_COLLECTIONS,
            Some(tenant),
            false,
            move || Box::pin(self.inner.documents.collections(tenant)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> Transactions for Layered<L> {
    async fn begin(&self, tenant: &TenantId) -> Result<Box<dyn storage_ports::UnitOfWork>> {
        // Only the start is intercepted: see `storage_ports::unit_of_work` for why a
        // unit's own calls are not repeated or timed.
        self.call(
            Operation::TRANSACTIONS_BEGIN,
            Some(tenant),
            false,
            move || Box::pin(self.inner.transactions.begin(tenant)),
        )
        .await
    }
}

#[async_trait]
impl<L: Intercept> Operations for Layered<L> {
    fn capabilities(&self) -> Capabilities {
        self.inner.operations.capabilities()
    }
    async fn health(&self) -> Health {
        self.inner.operations.health().await
    }
    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        self.call(
            Operation::OPERATIONS_STATS,
            Some(tenant),
            false,
            move || Box::pin(self.inner.operations.stats(tenant)),
        )
        .await
    }
    async fn schema(&self) -> Result<SchemaStatus> {
        self.call(Operation::OPERATIONS_SCHEMA, None, false, move || {
            Box::pin(self.inner.operations.schema())
        })
        .await
    }
    async fn migrate(&self) -> Result<SchemaStatus> {
        self.call(Operation::OPERATIONS_MIGRATE, None, false, move || {
            Box::pin(self.inner.operations.migrate())
        })
        .await
    }
    async fn tenants(&self) -> Result<Vec<TenantId>> {
        self.call(Operation::OPERATIONS_TENANTS, None, false, move || {
            Box::pin(self.inner.operations.tenants())
        })
        .await
    }
}
