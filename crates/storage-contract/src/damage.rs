//! W10 on every adapter: records damaged behind the adapter's back (a hand-run UPDATE,
//! an edited file, a bad restore) never break the rest of the tenant.
//!
//! Only the adapter's own test knows how to damage what it stores, so each adapter's
//! test implements [`Damager`] with direct access to its backend (SQL, Redis commands,
//! files) and calls [`damaged_records_are_skipped`]. For each kind of record it writes
//! a few, damages one, and checks:
//!
//! - runs: queries list the rest, reading the damaged one is `CorruptData`, stats work,
//!   a copy and a digest go on without it, and a prune with an archive keeps it;
//! - events: a run's events are read without the damaged one, reading the whole run is
//!   `CorruptData`, and a copy skips that run;
//! - jobs: a dequeue delivers the other jobs and does not fail, the damaged one goes
//!   to the dead letters with the reason (kept, never delivered, never blocking the
//!   queue), later dequeues deliver nothing more, and the export goes on;
//! - documents: listings page through the rest, reading it by id is `CorruptData`;
//! - metric records and patterns: the export and the pattern listing give the rest.
//!
//! A backend that cannot hold a kind of record damaged (a typed column, a store in
//! memory) answers `false` for it; the answer lists the kinds that were checked, so
//! the calling test states which ones it expects.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use storage_ports::transfer::{copy_tenant, Concerns};
use storage_ports::{
    CollectionName, Dequeue, DocumentFilter, DocumentId, ErrorKind, JobId, JobQueueExt as _,
    NewJob, NewRun, NodeExecution, NodeStatus, PageRequest, PatternObservation, QueueName,
    RetentionPolicy, RunArchive, RunId, RunMetric, RunOutcome, RunQuery, RunStatus, RunStep,
    StoreSet, TenantId, Timestamp, WorkflowId,
};

/// A stored record to damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The head of a run (its status, inputs, times).
    Run(RunId),
    /// One event of a run's log, by sequence number.
    Event(RunId, u64),
    /// A job waiting in a queue.
    Job(QueueName, JobId),
    /// A document.
    Document(CollectionName, DocumentId),
    /// The metric record of a run.
    MetricRecord(RunId),
    /// A pattern, by workflow, kind and key.
    Pattern(WorkflowId, String, String),
}

/// Damages stored records directly in the backend, for [`damaged_records_are_skipped`].
#[async_trait]
pub trait Damager: Send + Sync {
    /// Makes `record` of `tenant` undecodable, as a hand edit or a bad restore would.
    /// `Ok(false)` when this backend cannot hold that record damaged.
    ///
    /// # Errors
    /// What failed while damaging it.
    async fn damage(&self, tenant: &TenantId, record: &Record) -> Result<bool, String>;
}

type Checked = Result<(), String>;

const RUNS_ONLY: Concerns = Concerns {
    workflows: false,
    runs: true,
    metrics: false,
    queue: false,
    documents: false,
};

fn id<T: TryFrom<String, Error = storage_ports::Error>>(s: &str) -> Result<T, String> {
    T::try_from(s.to_owned()).map_err(|e| e.to_string())
}

fn corrupt<T: std::fmt::Debug>(r: storage_ports::Result<T>, what: &str) -> Checked {
    match r {
        Err(e) if e.kind() == ErrorKind::CorruptData => Ok(()),
        other => Err(format!("{what}: expected CorruptData, got {other:?}")),
    }
}

fn ok<T>(r: storage_ports::Result<T>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

async fn new_run(set: &StoreSet, t: &TenantId, wf: &str, at: Timestamp) -> Result<RunId, String> {
    let run = NewRun {
        run_id: RunId::generate(),
        workflow_id: id(wf)?,
        version: 1,
        inputs: json!({"wf": wf}),
        started_at: at,
    };
    let run_id = run.run_id.clone();
    ok(set.runs.start(t, run).await, "starting a run")?;
    Ok(run_id)
}

async fn finish(set: &StoreSet, t: &TenantId, run: &RunId) -> Checked {
    let outcome = RunOutcome::succeeded(json!("done"), Timestamp::now());
    ok(set.runs.finish(t, run, outcome).await, "finishing a run").map(drop)
}

/// An archive that keeps what it is given.
#[derive(Default)]
struct Kept(Vec<RunId>);

#[async_trait::async_trait]
impl RunArchive for Kept {
    fn write(&mut self, run: &storage_ports::CompleteRun) -> storage_ports::Result<()> {
        self.0.push(run.run.run_id.clone());
        Ok(())
    }
}

fn memory() -> StoreSet {
    adapter_memory::MemoryStore::new(adapter_memory::MemoryOptions::default()).store_set()
}

/// Prunes every finished run older than a minute into an archive: the archive and the
/// deletions must hold `archived`, and the report must keep `kept`.
async fn prune_keeps(set: &StoreSet, t: &TenantId, archived: usize, kept: &[RunId]) -> Checked {
    let mut archive = Kept::default();
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(60)),
        ..RetentionPolicy::default()
    };
    let pruned = ok(
        set.runs
            .prune(t, &policy, Timestamp::now(), false, Some(&mut archive))
            .await,
        "a prune with an archive",
    )?;
    if pruned.deleted != archived || archive.0.len() != archived || pruned.kept_damaged != kept {
        return Err(format!(
            "the prune should archive and delete {archived} runs and keep {kept:?}: {pruned:?}"
        ));
    }
    Ok(())
}

async fn listed_runs(set: &StoreSet, t: &TenantId) -> Result<Vec<RunId>, String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = ok(
            set.runs
                .query(
                    t,
                    RunQuery {
                        limit: 2,
                        cursor,
                        ..RunQuery::default()
                    },
                )
                .await,
            "a run query",
        )?;
        out.extend(page.items.into_iter().map(|r| r.run_id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    Ok(out)
}

async fn runs(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let hour_ago = Timestamp::now().minus(Duration::from_secs(3600));
    let mut ids = Vec::new();
    for wf in ["a", "b", "c", "d"] {
        let run = new_run(set, t, wf, hour_ago).await?;
        finish(set, t, &run).await?;
        ids.push(run);
    }
    if !d.damage(t, &Record::Run(ids[1].clone())).await? {
        return Ok(false);
    }
    let mut rest = vec![ids[0].clone(), ids[2].clone(), ids[3].clone()];
    rest.sort();
    if listed_runs(set, t).await? != rest {
        return Err(format!(
            "runs: the query should list the three readable runs {rest:?}"
        ));
    }
    corrupt(
        set.runs.get(t, &ids[1]).await,
        "runs: reading the damaged run",
    )?;
    ok(set.operations.stats(t).await, "runs: stats")?;
    let dst = memory();
    let report = ok(
        copy_tenant(set, t, &dst, t, RUNS_ONLY).await,
        "runs: a copy",
    )?;
    if report.written.get("runs") != Some(&3) {
        return Err(format!(
            "runs: a copy should write the 3 readable runs: {report:?}"
        ));
    }
    prune_keeps(set, t, 3, &[])
        .await
        .map_err(|e| format!("runs: {e}"))?;
    Ok(true)
}

async fn events(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let hour_ago = Timestamp::now().minus(Duration::from_secs(3600));
    let run = new_run(set, t, "ev", hour_ago).await?;
    let other = new_run(set, t, "ev", hour_ago).await?;
    for n in 0..3 {
        let step = RunStep::Node(NodeExecution {
            node_id: id(&format!("n{n}"))?,
            node_type: "task".into(),
            status: NodeStatus::Succeeded,
            inputs: json!({"n": n}),
            outputs: json!(n),
            error: None,
            retries: 0,
            started_at: Timestamp::now(),
            ended_at: Some(Timestamp::now()),
        });
        ok(set.runs.append(t, &run, step).await, "events: an append")?;
    }
    finish(set, t, &run).await?;
    finish(set, t, &other).await?;
    // Sequence 1 is `started`; 2, 3 and 4 are the steps; 5 is `finished`.
    if !d.damage(t, &Record::Event(run.clone(), 3)).await? {
        return Ok(false);
    }
    let read = ok(set.runs.events(t, &run, 1).await, "events: reading the log")?;
    let seqs: Vec<u64> = read.iter().map(|e| e.seq).collect();
    if seqs != [1, 2, 4, 5] {
        return Err(format!(
            "events: the log should read without the damaged event 3, got {seqs:?}"
        ));
    }
    corrupt(
        set.runs.get_complete(t, &run).await,
        "events: reading the whole damaged run",
    )?;
    ok(set.runs.get(t, &run).await, "events: reading the head")?;
    let dst = memory();
    let report = ok(
        copy_tenant(set, t, &dst, t, RUNS_ONLY).await,
        "events: a copy",
    )?;
    if report.skipped_damaged.get("runs") != Some(&vec![run.to_string()]) {
        return Err(format!("events: a copy should skip only {run}: {report:?}"));
    }
    ok(
        dst.runs.get(t, &other).await,
        "events: the other run copied",
    )?;
    prune_keeps(set, t, 1, &[run])
        .await
        .map_err(|e| format!("events: {e}"))?;
    Ok(true)
}

async fn jobs(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let q: QueueName = id("damaged")?;
    let mut ids = Vec::new();
    for n in 0..3 {
        let job = ok(
            set.queue.enqueue(t, &q, NewJob::new(json!({"n": n}))).await,
            "jobs: an enqueue",
        )?;
        ids.push(job.job_id);
    }
    if !d.damage(t, &Record::Job(q.clone(), ids[1].clone())).await? {
        return Ok(false);
    }
    let lease = Duration::from_secs(60);
    let got = ok(
        set.queue.dequeue(t, &q, Dequeue::batch(10, lease)).await,
        "jobs: a dequeue meeting a damaged job",
    )?;
    let mut delivered: Vec<JobId> = got.iter().map(|j| j.lease.job_id.clone()).collect();
    delivered.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    if delivered != want {
        return Err(format!(
            "jobs: the dequeue should deliver the readable jobs {want:?}, got {delivered:?}"
        ));
    }
    let again = ok(
        set.queue.dequeue(t, &q, Dequeue::batch(10, lease)).await,
        "jobs: the next dequeue",
    )?;
    if !again.is_empty() {
        return Err(format!("jobs: nothing else is due, got {again:?}"));
    }
    let stats = ok(set.queue.stats(t, &q).await, "jobs: queue stats")?;
    if stats.dead != 1 || stats.running != 2 {
        return Err(format!(
            "jobs: the damaged job should be in the dead letters, the others leased: {stats:?}"
        ));
    }
    ok(set.job_transfer.export_jobs(t).await, "jobs: the export")?;
    Ok(true)
}

async fn documents(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let c: CollectionName = id("damaged")?;
    for n in 0..5 {
        ok(
            set.documents
                .create(t, &c, Some(id(&format!("d{n}"))?), json!({"n": n}))
                .await,
            "documents: a create",
        )?;
    }
    let bad: DocumentId = id("d2")?;
    if !d
        .damage(t, &Record::Document(c.clone(), bad.clone()))
        .await?
    {
        return Ok(false);
    }
    let (mut seen, mut page) = (Vec::new(), PageRequest::first(2));
    loop {
        let p = ok(
            set.documents
                .list(t, &c, &DocumentFilter::all(), page)
                .await,
            "documents: a listing",
        )?;
        seen.extend(p.items.into_iter().map(|doc| doc.id.to_string()));
        match p.next {
            Some(n) => page = PageRequest::after(2, n),
            None => break,
        }
    }
    if seen != ["d0", "d1", "d3", "d4"] {
        return Err(format!(
            "documents: the listing should page through the readable documents, got {seen:?}"
        ));
    }
    corrupt(
        set.documents.get(t, &c, &bad).await,
        "documents: reading the damaged document",
    )?;
    Ok(true)
}

async fn metric_records(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let mut ids = Vec::new();
    for n in 0..3_u32 {
        let run_id = RunId::generate();
        let metric = RunMetric {
            run_id: run_id.clone(),
            workflow_id: id("metered")?,
            version: 1,
            status: RunStatus::Succeeded,
            duration_ms: f64::from(n + 1),
            finished_at: Timestamp::now(),
            values: BTreeMap::new(),
        };
        ok(set.metrics.record(t, metric).await, "metrics: a record")?;
        ids.push(run_id);
    }
    if !d.damage(t, &Record::MetricRecord(ids[1].clone())).await? {
        return Ok(false);
    }
    let exported = ok(
        set.metrics_transfer.export_records(t).await,
        "metrics: the export",
    )?;
    let mut got: Vec<RunId> = exported.into_iter().map(|m| m.run_id).collect();
    got.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    if got != want {
        return Err(format!(
            "metrics: the export should give the readable records {want:?}, got {got:?}"
        ));
    }
    ok(
        set.metrics.summary(t, &id("metered")?, None).await,
        "metrics: the summary",
    )?;
    Ok(true)
}

async fn patterns(set: &StoreSet, t: &TenantId, d: &dyn Damager) -> Result<bool, String> {
    let wf: WorkflowId = id("patterned")?;
    for key in ["k0", "k1", "k2"] {
        let observation = PatternObservation {
            workflow_id: wf.clone(),
            kind: "slow_node".into(),
            key: key.into(),
            description: format!("{key} is slow"),
            data: json!({"key": key}),
            confidence: 0.5,
            seen_at: Timestamp::now(),
        };
        ok(
            set.metrics.upsert_pattern(t, observation).await,
            "patterns: an upsert",
        )?;
    }
    let bad = Record::Pattern(wf.clone(), "slow_node".into(), "k1".into());
    if !d.damage(t, &bad).await? {
        return Ok(false);
    }
    for of in [None, Some(&wf)] {
        let listed = ok(set.metrics.patterns(t, of).await, "patterns: the listing")?;
        let mut keys: Vec<String> = listed.into_iter().map(|p| p.key).collect();
        keys.sort();
        if keys != ["k0", "k2"] {
            return Err(format!(
                "patterns: the listing should give the readable patterns, got {keys:?}"
            ));
        }
    }
    Ok(true)
}

/// Damages one record of each kind in turn, each in a fresh tenant, and checks that
/// the rest stays readable (see the module documentation). Answers the kinds checked,
/// in the order run, event, job, document, metric record, pattern.
///
/// # Errors
/// The first check that failed, saying what was expected.
pub async fn damaged_records_are_skipped(
    set: &StoreSet,
    damager: &dyn Damager,
) -> Result<Vec<&'static str>, String> {
    let caps = set.operations.capabilities();
    let mut checked = Vec::new();
    let tenant = || crate::servers::fresh_tenant().map_err(|e| e.to_string());
    if caps.runs {
        if runs(set, &tenant()?, damager).await? {
            checked.push("run");
        }
        if events(set, &tenant()?, damager).await? {
            checked.push("event");
        }
    }
    if caps.queue && jobs(set, &tenant()?, damager).await? {
        checked.push("job");
    }
    if caps.documents && documents(set, &tenant()?, damager).await? {
        checked.push("document");
    }
    if caps.metrics {
        if metric_records(set, &tenant()?, damager).await? {
            checked.push("metric record");
        }
        if patterns(set, &tenant()?, damager).await? {
            checked.push("pattern");
        }
    }
    Ok(checked)
}
