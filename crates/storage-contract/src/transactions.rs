//! T1: a run and its job commit together or not at all.

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::TransactionsExt as _;
use storage_ports::{Dequeue, ErrorKind, JobId, NewJob, QueueName, Timestamp};

use crate::check::{expect_kind, id, Ctx, TestResult};
use crate::ensure_eq;
use crate::runs::new_run;

/// T1: both parts become visible.
pub async fn t1_run_and_job_commit_together(ctx: Ctx) -> TestResult {
    let q: QueueName = id("t1")?;
    let run = new_run("t1", Timestamp::now());
    let rid = run.run_id.clone();
    let (started, enq) = ctx
        .set
        .transactions
        .start_run_with_job(&ctx.tenant, run, &q, NewJob::new(json!({"run": rid})))
        .await?;
    ensure_eq!(ctx.set.runs.get(&ctx.tenant, &rid).await?, started, "run");
    let jobs = ctx
        .set
        .queue
        .dequeue(
            &ctx.tenant,
            &q,
            Dequeue::one(std::time::Duration::from_secs(30)),
        )
        .await?;
    ensure_eq!(
        jobs.first().map(|j| j.lease.job_id.clone()),
        Some(enq.job_id),
        "job"
    );
    Ok(())
}

/// T1: when the job part fails, the run is not visible either.
pub async fn t1_failure_leaves_neither_visible(ctx: Ctx) -> TestResult {
    let q: QueueName = id("t1f")?;
    let job_id = JobId::generate();
    ctx.set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(0)).with_id(job_id.clone()),
        )
        .await?;
    let run = new_run("t1f", Timestamp::now());
    let rid = run.run_id.clone();
    let r = ctx
        .set
        .transactions
        .start_run_with_job(&ctx.tenant, run, &q, NewJob::new(json!(1)).with_id(job_id))
        .await;
    expect_kind(r, ErrorKind::AlreadyExists, "job id that exists")?;
    expect_kind(
        ctx.set.runs.get(&ctx.tenant, &rid).await,
        ErrorKind::NotFound,
        "run of the failed transaction",
    )?;
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.pending,
        1,
        "jobs"
    );
    Ok(())
}
