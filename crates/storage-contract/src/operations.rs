//! O1-O4: health, stats, schema, export and import.

use serde_json::json;
use storage_ports::transfer::{copy_tenant, digest_tenant, Concerns};
use storage_ports::JobQueueExt as _;
use storage_ports::{
    CollectionName, CredentialKey, NewJob, NewWorkflowVersion, QueueName, RunStatus, Secret,
    Timestamp, WorkflowId,
};

use crate::check::{id, Ctx, TestResult};
use crate::runs::complete_run;
use crate::{ensure, ensure_eq};

/// O1: health says the backend answers.
pub async fn o1_health_answers(ctx: Ctx) -> TestResult {
    let h = ctx.set.operations.health().await;
    ensure!(h.ok, "health is not ok: {}", h.detail);
    ensure_eq!(h.backend, ctx.caps.backend, "backend name");
    Ok(())
}

/// Stores a little of everything the adapter offers.
async fn seed(ctx: &Ctx) -> TestResult {
    let t = &ctx.tenant;
    if ctx.caps.workflows {
        let wf: WorkflowId = id("o-wf")?;
        ctx.set
            .workflows
            .put(t, NewWorkflowVersion::next(wf.clone(), json!({"v": 1})))
            .await?;
        ctx.set
            .workflows
            .put(
                t,
                NewWorkflowVersion::next(wf, json!({"v": 2})).with_parent(1),
            )
            .await?;
    }
    if ctx.caps.runs {
        for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Running] {
            ctx.set
                .runs
                .store_complete(t, complete_run("o-wf", s, Timestamp::now()))
                .await?;
        }
    }
    if ctx.caps.metrics {
        let m = storage_ports::RunMetric {
            run_id: storage_ports::RunId::generate(),
            workflow_id: id("o-wf")?,
            version: 1,
            status: RunStatus::Succeeded,
            duration_ms: 12.5,
            finished_at: Timestamp::now(),
            values: [(id("tokens")?, 7.0)].into_iter().collect(),
        };
        ctx.set.metrics.record(t, m).await?;
        ctx.set
            .metrics
            .upsert_pattern(
                t,
                storage_ports::PatternObservation {
                    workflow_id: id("o-wf")?,
                    kind: "k".into(),
                    key: "x".into(),
                    description: "d".into(),
                    data: json!({"a": 1}),
                    confidence: 0.4,
                    seen_at: Timestamp::now(),
                },
            )
            .await?;
    }
    if ctx.caps.queue {
        let q: QueueName = id("o-q")?;
        ctx.set
            .queue
            .enqueue(t, &q, NewJob::new(json!(1)).with_priority(3))
            .await?;
        ctx.set
            .queue
            .enqueue(t, &q, NewJob::new(json!(2)).with_dedup_key("d"))
            .await?;
    }
    if ctx.caps.documents {
        let c: CollectionName = id("o-docs")?;
        ctx.set
            .documents
            .create(t, &c, None, json!({"a": 1}))
            .await?;
        ctx.set
            .documents
            .create(t, &c, Some(id("fixed")?), json!({"b": [1, 2]}))
            .await?;
    }
    if ctx.caps.credentials {
        let k: CredentialKey = id("o-key")?;
        ctx.set
            .credentials
            .set(t, &k, &Secret::new("v".into()))
            .await?;
    }
    Ok(())
}

/// O2: stats count what each offered concern holds.
pub async fn o2_stats_count_what_each_concern_holds(ctx: Ctx) -> TestResult {
    seed(&ctx).await?;
    let s = ctx.set.operations.stats(&ctx.tenant).await?;
    let c = &ctx.caps;
    if c.workflows {
        ensure_eq!(
            (s.workflows, s.workflow_versions),
            (1, 2),
            "workflow counts"
        );
    }
    if c.runs {
        ensure_eq!((s.runs, s.run_events), (3, 3 * 5 - 1), "run counts");
    }
    if c.metrics {
        ensure_eq!((s.metric_records, s.patterns), (1, 1), "metric counts");
    }
    if c.queue {
        ensure_eq!(s.jobs, 2, "jobs");
    }
    if c.documents {
        ensure_eq!(s.documents, 2, "documents");
    }
    let other = ctx.set.operations.stats(&ctx.other).await?;
    ensure_eq!(
        other,
        storage_ports::StoreStats::default(),
        "an empty tenant's stats"
    );
    Ok(())
}

/// O3: migrations are recorded, current, and applying them again changes nothing.
pub async fn o3_migrations_recorded_and_idempotent(ctx: Ctx) -> TestResult {
    let s = ctx.set.operations.schema().await?;
    ensure!(
        s.applied >= 1 && s.applied == s.known,
        "schema {s:?} is not current after open"
    );
    ensure_eq!(
        ctx.set.operations.migrate().await?,
        s,
        "schema after migrating again"
    );
    Ok(())
}

/// O4: a tenant exported and imported through the ports keeps every count and digest,
/// and a second copy (a resumed migration) changes nothing.
pub async fn o4_export_import_through_ports_keeps_counts_and_digests(ctx: Ctx) -> TestResult {
    seed(&ctx).await?;
    let concerns = Concerns::shared(&ctx.set, &ctx.set);
    let source = digest_tenant(&ctx.set, &ctx.tenant, concerns).await?;
    copy_tenant(&ctx.set, &ctx.tenant, &ctx.set, &ctx.other, concerns).await?;
    ensure_eq!(
        digest_tenant(&ctx.set, &ctx.other, concerns).await?,
        source,
        "digests after copy"
    );
    copy_tenant(&ctx.set, &ctx.tenant, &ctx.set, &ctx.other, concerns).await?;
    ensure_eq!(
        digest_tenant(&ctx.set, &ctx.other, concerns).await?,
        source,
        "digests after a second copy"
    );
    Ok(())
}
