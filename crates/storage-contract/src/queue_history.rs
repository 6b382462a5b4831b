//! Q14-Q16: cancelling jobs, the finished-job history, progress and output.

use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{
    CancelOutcome, Cursor, Dequeue, ErrorKind, FinishedState, HistoryQuery, JobFailure, JobId,
    JobInfo, JobStatus, Lease, LeasedJob, NewJob, QueueName, Timestamp,
};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const LONG: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn lease_of(jobs: &[LeasedJob], what: &str) -> Result<Lease, Failure> {
    jobs.first()
        .map(|j| j.lease.clone())
        .ok_or_else(|| Failure(format!("nothing dequeued ({what})")))
}

/// Q14: a pending or a scheduled job that is cancelled is finished at once and never
/// delivered; its dedup key is free again; cancelling it again, or cancelling a dead
/// job, is `PreconditionFailed`, and an unknown job is `NotFound`.
pub async fn q14_a_cancelled_pending_or_scheduled_job_is_never_delivered(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q14")?;
    let pending = s
        .enqueue(t, &q, NewJob::new(json!("p")).with_dedup_key("k"))
        .await?
        .job_id;
    let scheduled = s
        .enqueue(
            t,
            &q,
            NewJob::new(json!("s")).with_delay(Duration::from_millis(300)),
        )
        .await?
        .job_id;
    ensure_eq!(
        s.cancel(t, &q, &pending).await?,
        CancelOutcome::Cancelled,
        "cancelling a pending job"
    );
    ensure_eq!(
        s.cancel(t, &q, &scheduled).await?,
        CancelOutcome::Cancelled,
        "cancelling a scheduled job"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    ensure!(
        s.dequeue(t, &q, Dequeue::batch(10, LONG)).await?.is_empty(),
        "a cancelled job was delivered"
    );
    let stats = s.stats(t, &q).await?;
    ensure_eq!(
        (stats.pending, stats.scheduled, stats.cancelled),
        (0, 0, 2),
        "stats (pending, scheduled, cancelled) after two cancels"
    );
    expect_kind(
        s.cancel(t, &q, &pending).await,
        ErrorKind::PreconditionFailed,
        "cancelling a cancelled job",
    )?;
    expect_kind(
        s.cancel(t, &q, &JobId::generate()).await,
        ErrorKind::NotFound,
        "cancelling a job that does not exist",
    )?;
    let again = s
        .enqueue(t, &q, NewJob::new(json!("p2")).with_dedup_key("k"))
        .await?;
    ensure!(
        !again.deduplicated && again.job_id != pending,
        "a cancelled job still held its dedup key"
    );
    let dying = s
        .enqueue(t, &q, NewJob::new(json!("d")).with_max_attempts(1))
        .await?
        .job_id;
    let batch = s.dequeue(t, &q, Dequeue::batch(10, LONG)).await?;
    for j in &batch {
        let failure = JobFailure {
            error: "no".into(),
            retry: false,
        };
        s.fail(t, &j.lease, failure).await?;
    }
    ensure!(
        batch.iter().any(|j| j.lease.job_id == dying),
        "the job to kill was not delivered"
    );
    expect_kind(
        s.cancel(t, &q, &dying).await,
        ErrorKind::PreconditionFailed,
        "cancelling a dead job",
    )?;
    Ok(())
}

/// Q14: cancelling a running job is cooperative: the call says `Requested`, and the
/// holder's next heartbeat, ack, fail or snooze (and progress, where offered) answers
/// `Cancelled` and finishes the job as cancelled; later calls with that lease are
/// `LeaseLost`. An expired lease of a job whose cancel was asked for is finished, not
/// delivered again.
pub async fn q14_a_running_job_is_cancelled_cooperatively(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q14r")?;
    for n in 0..5 {
        s.enqueue(t, &q, NewJob::new(json!(n))).await?;
    }
    let held = s.dequeue(t, &q, Dequeue::batch(4, LONG)).await?;
    ensure_eq!(held.len(), 4, "four jobs leased");
    let short = lease_of(
        &s.dequeue(t, &q, Dequeue::one(Duration::from_millis(150)))
            .await?,
        "the short lease",
    )?;
    for j in held.iter().map(|j| &j.lease).chain([&short]) {
        ensure_eq!(
            s.cancel(t, &q, &j.job_id).await?,
            CancelOutcome::Requested,
            "cancelling a running job"
        );
    }
    ensure_eq!(
        s.cancel(t, &q, &short.job_id).await?,
        CancelOutcome::Requested,
        "asking twice"
    );
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| held[i].lease.clone());
    expect_kind(
        s.heartbeat(t, &a, LONG).await,
        ErrorKind::Cancelled,
        "heartbeat",
    )?;
    expect_kind(
        s.heartbeat(t, &a, LONG).await,
        ErrorKind::LeaseLost,
        "a heartbeat after the cancel was answered",
    )?;
    expect_kind(s.ack(t, &b).await, ErrorKind::Cancelled, "ack")?;
    let failure = JobFailure {
        error: "stopping".into(),
        retry: true,
    };
    expect_kind(s.fail(t, &c, failure).await, ErrorKind::Cancelled, "fail")?;
    if ctx.caps.queue_progress {
        expect_kind(
            s.progress(t, &d, json!({"step": 1})).await,
            ErrorKind::Cancelled,
            "progress",
        )?;
    } else if ctx.caps.queue_snooze {
        expect_kind(
            s.snooze(t, &d, Duration::from_millis(1)).await,
            ErrorKind::Cancelled,
            "snooze",
        )?;
    } else {
        expect_kind(
            s.heartbeat(t, &d, LONG).await,
            ErrorKind::Cancelled,
            "heartbeat",
        )?;
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure!(
        s.dequeue(t, &q, Dequeue::batch(10, LONG))
            .await?
            .iter()
            .all(|j| j.lease.job_id != short.job_id),
        "the expired lease of a cancelled job was delivered again"
    );
    if ctx.caps.queue_history {
        let info = s.job(t, &q, &short.job_id).await?;
        ensure_eq!(
            info.status,
            JobStatus::Cancelled,
            "the expired lease of a cancelled job is finished as cancelled ({info:?})"
        );
    }
    ensure_eq!(
        s.stats(t, &q).await?.cancelled,
        5,
        "every cancelled job counts as cancelled"
    );
    expect_kind(
        s.ack(t, &short).await,
        ErrorKind::LeaseLost,
        "the expired lease after its job was cancelled",
    )?;
    Ok(())
}

/// Enqueues a job kept in the history, leases it, and returns its lease.
async fn kept_and_leased(
    ctx: &Ctx,
    q: &QueueName,
    payload: serde_json::Value,
) -> Result<Lease, Failure> {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    s.enqueue(t, q, NewJob::new(payload).with_keep_for(HOUR))
        .await?;
    lease_of(&s.dequeue(t, q, Dequeue::one(LONG)).await?, "a kept job")
}

/// Every page of the history, following cursors.
async fn all_pages(
    ctx: &Ctx,
    q: &QueueName,
    state: Option<FinishedState>,
    limit: usize,
) -> Result<Vec<JobInfo>, Failure> {
    let mut query = HistoryQuery::first(limit);
    query.state = state;
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = ctx.set.queue.history(&ctx.tenant, q, &query).await?;
        ensure!(page.items.len() <= limit, "a page held more than its limit");
        out.extend(page.items);
        match page.next {
            Some(c) => query = query.clone().after(c),
            None => return Ok(out),
        }
    }
    Err(Failure("the history listing did not end".into()))
}

/// Q15: acked, cancelled and dead jobs that carry `keep_for` are kept with their
/// attempts, last error and output; the history lists them newest finish first,
/// filtered by state and paged by cursor, each job once. Without `keep_for` an acked
/// job is gone. `job` shows any job's status.
pub async fn q15_finished_jobs_are_kept_and_listed_newest_first(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q15")?;
    let done1 = kept_and_leased(&ctx, &q, json!("done1")).await?;
    s.ack(t, &done1).await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let dead = kept_and_leased(&ctx, &q, json!("dead")).await?;
    let failure = JobFailure {
        error: "it broke".into(),
        retry: false,
    };
    s.fail(t, &dead, failure).await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cancelled = s
        .enqueue(
            t,
            &q,
            NewJob::new(json!("cancelled"))
                .with_keep_for(HOUR)
                .with_delay(HOUR),
        )
        .await?
        .job_id;
    s.cancel(t, &q, &cancelled).await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let done2 = kept_and_leased(&ctx, &q, json!("done2")).await?;
    s.ack(t, &done2).await?;
    let gone = s.enqueue(t, &q, NewJob::new(json!("gone"))).await?.job_id;
    let lease = lease_of(&s.dequeue(t, &q, Dequeue::one(LONG)).await?, "gone")?;
    s.ack(t, &lease).await?;
    let pending = s
        .enqueue(t, &q, NewJob::new(json!("pending")).with_keep_for(HOUR))
        .await?
        .job_id;

    let all = all_pages(&ctx, &q, None, 100).await?;
    let ids: Vec<&JobId> = all.iter().map(|j| &j.job_id).collect();
    ensure_eq!(
        ids,
        vec![&done2.job_id, &cancelled, &dead.job_id, &done1.job_id],
        "the history, newest finish first"
    );
    let paged = all_pages(&ctx, &q, None, 1).await?;
    ensure_eq!(
        paged.iter().map(|j| &j.job_id).collect::<Vec<_>>(),
        ids,
        "paging one at a time yields each job once, in order"
    );
    let dead_info = &all[2];
    ensure_eq!(dead_info.status, JobStatus::Dead, "the failed job's status");
    ensure_eq!(
        (dead_info.attempts, dead_info.last_error.as_deref()),
        (1, Some("it broke")),
        "the dead job keeps its attempts and last error"
    );
    ensure!(
        dead_info.finished_at.is_some(),
        "a finished job has a finish time"
    );
    for (state, want) in [
        (FinishedState::Completed, vec![&done2.job_id, &done1.job_id]),
        (FinishedState::Cancelled, vec![&cancelled]),
        (FinishedState::Dead, vec![&dead.job_id]),
    ] {
        let got = all_pages(&ctx, &q, Some(state), 100).await?;
        ensure_eq!(
            got.iter().map(|j| &j.job_id).collect::<Vec<_>>(),
            want,
            "the history filtered to {}",
            state.as_str()
        );
        ensure!(
            got.iter().all(|j| j.status == state.status()),
            "a filtered page holds another state"
        );
    }
    ensure_eq!(
        s.job(t, &q, &pending).await?.status,
        JobStatus::Pending,
        "job() of a pending job"
    );
    ensure_eq!(
        s.job(t, &q, &done1.job_id).await?.payload,
        json!("done1"),
        "job() of a completed job"
    );
    expect_kind(
        s.job(t, &q, &gone).await,
        ErrorKind::NotFound,
        "an acked job without keep_for",
    )?;
    let stats = s.stats(t, &q).await?;
    ensure_eq!(
        (stats.completed, stats.cancelled, stats.dead, stats.pending),
        (2, 1, 1, 1),
        "stats (completed, cancelled, dead, pending)"
    );
    expect_kind(
        s.history(
            t,
            &q,
            &HistoryQuery::first(10).after(Cursor::encode("runs", &1)),
        )
        .await,
        ErrorKind::InvalidInput,
        "a cursor of another listing",
    )?;
    ensure!(
        s.history(&ctx.other, &q, &HistoryQuery::first(10))
            .await?
            .items
            .is_empty(),
        "another tenant sees this tenant's history"
    );
    Ok(())
}

/// Q15: retention removes finished jobs whose `keep_for` has passed, at most `max` per
/// call, and leaves the others; `max` out of range is `InvalidInput`.
pub async fn q15_retention_prunes_in_bounded_batches(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q15p")?;
    let short = Duration::from_millis(200);
    for n in 0..7 {
        let keep = if n < 5 { short } else { HOUR };
        s.enqueue(t, &q, NewJob::new(json!(n)).with_keep_for(keep))
            .await?;
    }
    let leased = s.dequeue(t, &q, Dequeue::batch(10, LONG)).await?;
    ensure_eq!(leased.len(), 7, "every job leased");
    let leases: Vec<Lease> = leased.into_iter().map(|j| j.lease).collect();
    for r in s.ack_batch(t, &leases).await? {
        r?;
    }
    ensure_eq!(
        s.prune_finished(t, 10).await?,
        0,
        "nothing is due before keep_for passed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rounds = [
        s.prune_finished(t, 2).await?,
        s.prune_finished(t, 2).await?,
        s.prune_finished(t, 2).await?,
        s.prune_finished(t, 2).await?,
    ];
    ensure_eq!(rounds, [2, 2, 1, 0], "pruned per call of at most 2");
    ensure_eq!(
        all_pages(&ctx, &q, None, 100).await?.len(),
        2,
        "the jobs kept for an hour stay"
    );
    expect_kind(
        s.prune_finished(t, 0).await,
        ErrorKind::InvalidInput,
        "prune_finished with max 0",
    )?;
    Ok(())
}

/// Q15: a finished job is enqueued again as a new job with the original's payload,
/// priority and attempts limit; the original stays in the history. A job that is not
/// finished, or unknown, is `NotFound`.
pub async fn q15_a_finished_job_is_enqueued_again_as_a_new_job(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q15r")?;
    let first = s
        .enqueue(
            t,
            &q,
            NewJob::new(json!({"to": "x"}))
                .with_keep_for(HOUR)
                .with_priority(3)
                .with_max_attempts(2),
        )
        .await?
        .job_id;
    let lease = lease_of(&s.dequeue(t, &q, Dequeue::one(LONG)).await?, "the first")?;
    let failure = JobFailure {
        error: "bad".into(),
        retry: false,
    };
    s.fail(t, &lease, failure).await?;
    let again = s.reenqueue(t, &q, &first).await?;
    ensure!(
        !again.deduplicated && again.job_id != first,
        "a re-enqueue makes a new job"
    );
    let got = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    let job = got
        .first()
        .ok_or_else(|| Failure("the re-enqueued job was not delivered".into()))?;
    ensure_eq!(job.lease.job_id, again.job_id, "the new job is delivered");
    ensure_eq!(
        (&job.payload, job.priority, job.max_attempts, job.attempt),
        (&json!({"to": "x"}), 3, 2, 1),
        "the new job carries the original's payload, priority and attempts limit"
    );
    ensure_eq!(
        s.job(t, &q, &first).await?.status,
        JobStatus::Dead,
        "the original stays in the history"
    );
    expect_kind(
        s.reenqueue(t, &q, &again.job_id).await,
        ErrorKind::NotFound,
        "re-enqueueing a running job",
    )?;
    expect_kind(
        s.reenqueue(t, &q, &JobId::generate()).await,
        ErrorKind::NotFound,
        "re-enqueueing an unknown job",
    )?;
    Ok(())
}

/// Q16: a lease holder records progress, fenced by its token (the last value is kept),
/// and acks with an output that the history keeps; a progress or output over the
/// payload limit is `InvalidInput`.
pub async fn q16_progress_is_fenced_and_the_output_is_kept(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q16")?;
    let lease = kept_and_leased(&ctx, &q, json!("work")).await?;
    s.progress(t, &lease, json!({"done": 1})).await?;
    s.progress(t, &lease, json!({"done": 2})).await?;
    let stale = Lease {
        token: lease.token.wrapping_add(1_000_000),
        ..lease.clone()
    };
    expect_kind(
        s.progress(t, &stale, json!({"done": 3})).await,
        ErrorKind::LeaseLost,
        "progress with a stale token",
    )?;
    let big = json!("x".repeat(storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES + 1));
    expect_kind(
        s.progress(t, &lease, big.clone()).await,
        ErrorKind::InvalidInput,
        "progress over the payload limit",
    )?;
    expect_kind(
        s.complete(t, &lease, big).await,
        ErrorKind::InvalidInput,
        "an output over the payload limit",
    )?;
    if ctx.caps.queue_history {
        let info = s.job(t, &q, &lease.job_id).await?;
        ensure_eq!(
            (info.status, info.progress),
            (JobStatus::Running, Some(json!({"done": 2}))),
            "a running job shows its last progress"
        );
    }
    s.complete(t, &lease, json!({"result": "ok"})).await?;
    expect_kind(
        s.complete(t, &lease, json!(1)).await,
        ErrorKind::LeaseLost,
        "completing twice",
    )?;
    if ctx.caps.queue_history {
        let info = s.job(t, &q, &lease.job_id).await?;
        ensure_eq!(
            (info.status, info.output, info.progress),
            (
                JobStatus::Completed,
                Some(json!({"result": "ok"})),
                Some(json!({"done": 2}))
            ),
            "the history keeps the output and the last progress"
        );
    }
    Ok(())
}

/// Q15: `jobs` lists a queue's jobs of one status on the backend's clock, in the
/// queue's order for it: pending in delivery order, scheduled by run-at time, running
/// by lease expiry, finished newest first; a limit out of 1..=1000 is `InvalidInput`.
/// A scheduled job shows when it is due and a running one when its lease expires.
pub async fn q15_jobs_are_listed_by_status_in_queue_order(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q15j")?;
    let running = s
        .enqueue(t, &q, NewJob::new(json!("f")).with_priority(9))
        .await?
        .job_id;
    let leased = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    ensure_eq!(
        leased.first().map(|j| j.lease.job_id.clone()),
        Some(running.clone()),
        "the priority 9 job is leased"
    );
    let mut pending = Vec::new();
    for p in [1, 5, 3] {
        pending.push(
            s.enqueue(t, &q, NewJob::new(json!(p)).with_priority(p))
                .await?
                .job_id,
        );
    }
    let mut scheduled = Vec::new();
    for h in [1, 2] {
        scheduled.push(
            s.enqueue(t, &q, NewJob::new(json!(h)).with_delay(HOUR * h))
                .await?
                .job_id,
        );
    }
    let ids = |v: Vec<JobInfo>| v.into_iter().map(|i| i.job_id).collect::<Vec<JobId>>();
    ensure_eq!(
        ids(s.jobs(t, &q, JobStatus::Pending, 10).await?),
        vec![pending[1].clone(), pending[2].clone(), pending[0].clone()],
        "pending jobs in delivery order"
    );
    ensure_eq!(
        ids(s.jobs(t, &q, JobStatus::Pending, 2).await?),
        vec![pending[1].clone(), pending[2].clone()],
        "the first two pending jobs"
    );
    ensure_eq!(
        ids(s.jobs(t, &q, JobStatus::Scheduled, 10).await?),
        scheduled,
        "scheduled jobs by run-at time"
    );
    ensure_eq!(
        ids(s.jobs(t, &q, JobStatus::Running, 10).await?),
        vec![running],
        "running jobs"
    );
    ensure!(
        s.jobs(t, &q, JobStatus::Completed, 10).await?.is_empty(),
        "nothing completed yet"
    );
    // When each will move on: a scheduled job's due time, a running one's lease
    // expiry, both on the backend's clock (the clock its enqueue time is read on).
    let near = |a: Timestamp, b: Timestamp, d: Duration| {
        (a.as_micros() - b.as_micros() - micros(d)).abs() < 120_000_000
    };
    for (n, job) in s
        .jobs(t, &q, JobStatus::Scheduled, 10)
        .await?
        .iter()
        .enumerate()
    {
        let due = job.scheduled_for.ok_or_else(|| {
            Failure(format!(
                "scheduled job {} has no due time",
                job.job_id.as_str()
            ))
        })?;
        ensure!(
            near(due, job.enqueued_at, HOUR * (n as u32 + 1)),
            "a job delayed {} h is due then, not at {due} (enqueued {})",
            n + 1,
            job.enqueued_at
        );
        ensure!(
            job.lease_expires_at.is_none(),
            "a scheduled job has no lease"
        );
    }
    let held = s.jobs(t, &q, JobStatus::Running, 10).await?;
    let expiry = held
        .first()
        .and_then(|j| j.lease_expires_at)
        .ok_or_else(|| Failure("a running job shows no lease expiry".to_owned()))?;
    ensure!(
        held.first()
            .is_some_and(|j| near(expiry, j.enqueued_at, LONG)),
        "a 60 s lease expires about 60 s after the enqueue, not at {expiry}"
    );
    for job in s.jobs(t, &q, JobStatus::Pending, 10).await? {
        ensure!(
            job.scheduled_for.is_none() && job.lease_expires_at.is_none(),
            "a pending job is neither scheduled nor leased: {job:?}"
        );
    }
    expect_kind(
        s.jobs(t, &q, JobStatus::Pending, 0).await,
        ErrorKind::InvalidInput,
        "a jobs limit of 0",
    )?;
    Ok(())
}
