//! Q17: unique jobs over a period — a dedup key that also holds against jobs that
//! completed or died recently ("one per key per hour").

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{Dequeue, ErrorKind, JobFailure, NewJob, QueueName};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const LONG: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Leases the one job of `q` and acks it.
async fn run_one(ctx: &Ctx, q: &QueueName) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let leased = s.dequeue(t, q, Dequeue::one(LONG)).await?;
    let lease = &leased
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    s.ack(t, lease).await?;
    Ok(())
}

/// Q17: with `unique_for`, an enqueue returns the job with its key that completed or
/// died within the period, and says so; an enqueue without a period does not look at
/// finished jobs; a cancelled job never counts; once the period has passed the key is
/// free; `unique_for` without a dedup key is `InvalidInput`.
pub async fn q17_a_unique_key_holds_while_finished_within_its_period(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q17")?;
    let hourly = |n: i64| {
        NewJob::new(json!(n))
            .with_dedup_key("hourly")
            .with_unique_for(HOUR)
    };
    let first = s.enqueue(t, &q, hourly(1)).await?;
    ensure!(!first.deduplicated, "the first enqueue must store its job");
    run_one(&ctx, &q).await?;
    let again = s.enqueue(t, &q, hourly(2)).await?;
    ensure!(
        again.deduplicated && again.job_id == first.job_id,
        "a key whose job completed within the period must return that job: {again:?}"
    );
    let live_only = s
        .enqueue(t, &q, NewJob::new(json!(3)).with_dedup_key("hourly"))
        .await?;
    ensure!(
        !live_only.deduplicated,
        "an enqueue without a period must only look at live jobs"
    );
    run_one(&ctx, &q).await?;
    let still = s.enqueue(t, &q, hourly(4)).await?;
    ensure_eq!(
        still.job_id,
        first.job_id,
        "the kept job still holds the key for the period"
    );

    let brief = |n: i64| {
        NewJob::new(json!(n))
            .with_dedup_key("brief")
            .with_unique_for(Duration::from_millis(300))
    };
    let b1 = s.enqueue(t, &q, brief(1)).await?;
    run_one(&ctx, &q).await?;
    ensure!(
        s.enqueue(t, &q, brief(2)).await?.deduplicated,
        "within 300 ms the key is held"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b3 = s.enqueue(t, &q, brief(3)).await?;
    ensure!(
        !b3.deduplicated && b3.job_id != b1.job_id,
        "once the period has passed the key must be free"
    );
    run_one(&ctx, &q).await?;

    let cancelled = NewJob::new(json!(1))
        .with_dedup_key("cancelled")
        .with_unique_for(HOUR);
    let c1 = s.enqueue(t, &q, cancelled.clone()).await?;
    s.cancel(t, &q, &c1.job_id).await?;
    ensure!(
        !s.enqueue(t, &q, cancelled).await?.deduplicated,
        "a cancelled job must not hold its key"
    );
    run_one(&ctx, &q).await?;

    let dying = NewJob::new(json!(1))
        .with_dedup_key("dying")
        .with_unique_for(HOUR)
        .with_max_attempts(1);
    let d1 = s.enqueue(t, &q, dying.clone()).await?;
    let leased = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    let lease = &leased
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    let failure = JobFailure {
        error: "broken".into(),
        retry: false,
    };
    s.fail(t, lease, failure).await?;
    ensure_eq!(
        s.enqueue(t, &q, dying).await?.job_id,
        d1.job_id,
        "a job that died within the period holds its key"
    );

    expect_kind(
        s.enqueue(t, &q, NewJob::new(json!(1)).with_unique_for(HOUR))
            .await,
        ErrorKind::InvalidInput,
        "unique_for without a dedup key",
    )?;
    Ok(())
}

/// Q17: eight enqueuers race on one unique key while a worker runs and acks the job:
/// exactly one job is ever stored, and every other enqueue returns it, across the
/// moment it goes from running to completed.
pub async fn q17_racing_unique_enqueues_store_one_job(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q17r")?;
    let job = || {
        NewJob::new(json!("x"))
            .with_dedup_key("race")
            .with_unique_for(HOUR)
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (set, t, q, job) = (ctx.set.clone(), ctx.tenant.clone(), q.clone(), job());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..10 {
                out.push(set.queue.enqueue(&t, &q, job.clone()).await?);
                tokio::task::yield_now().await;
            }
            Ok::<_, storage_ports::Error>(out)
        }));
    }
    let (set, t, wq) = (ctx.set.clone(), ctx.tenant.clone(), q.clone());
    let worker = tokio::spawn(async move {
        for _ in 0..200 {
            let leased = set.queue.dequeue(&t, &wq, Dequeue::one(LONG)).await?;
            if let Some(j) = leased.first() {
                set.queue.ack(&t, &j.lease).await?;
                return Ok::<bool, storage_ports::Error>(true);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(false)
    });
    let mut ids = HashSet::new();
    let mut stored = 0;
    for task in tasks {
        let results = task
            .await
            .map_err(|e| Failure(format!("enqueuer panicked: {e}")))??;
        for r in results {
            stored += usize::from(!r.deduplicated);
            ids.insert(r.job_id);
        }
    }
    let acked = worker
        .await
        .map_err(|e| Failure(format!("worker panicked: {e}")))??;
    ensure!(acked, "the worker never got the job");
    ensure_eq!(
        (stored, ids.len()),
        (1, 1),
        "(jobs stored, distinct ids returned) over 80 racing enqueues"
    );
    let after = ctx.set.queue.enqueue(&ctx.tenant, &q, job()).await?;
    ensure!(
        after.deduplicated && ids.contains(&after.job_id),
        "after the ack the completed job still holds the key"
    );
    Ok(())
}
