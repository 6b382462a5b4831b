//! Q1-Q10: the job queue.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{
    Backoff, Dequeue, ErrorKind, FailOutcome, JobFailure, NewJob, QueueName, Timestamp,
};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const LONG: Duration = Duration::from_secs(60);

/// Q1: enqueue, dequeue returns the payload, ack removes it.
pub async fn q1_enqueue_dequeue_ack(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q1")?;
    let e = ctx
        .set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!({"run": 1})))
        .await?;
    let jobs = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    ensure_eq!(jobs.len(), 1, "dequeued");
    ensure_eq!(
        (&jobs[0].lease.job_id, &jobs[0].payload, jobs[0].attempt),
        (&e.job_id, &json!({"run": 1}), 1),
        "job"
    );
    ctx.set.queue.ack(&ctx.tenant, &jobs[0].lease).await?;
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?,
        storage_ports::QueueStats::default(),
        "stats after ack"
    );
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "acked job delivered again"
    );
    Ok(())
}

/// Q2: higher priority first; equal priority by run-at, then enqueue order.
pub async fn q2_priority_then_run_at_then_enqueue_order(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q2")?;
    let past = Timestamp::now().as_micros() - 60_000_000;
    let jobs = vec![
        NewJob::new(json!("low")).with_priority(0),
        NewJob::new(json!("high-late"))
            .with_priority(5)
            .with_run_at(Timestamp::from_micros(past + 2)),
        NewJob::new(json!("high-early"))
            .with_priority(5)
            .with_run_at(Timestamp::from_micros(past + 1)),
        NewJob::new(json!("mid-1"))
            .with_priority(1)
            .with_run_at(Timestamp::from_micros(past)),
        NewJob::new(json!("mid-2"))
            .with_priority(1)
            .with_run_at(Timestamp::from_micros(past)),
    ];
    for j in jobs {
        ctx.set.queue.enqueue(&ctx.tenant, &q, j).await?;
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        for j in ctx
            .set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
        {
            order.push(j.payload);
        }
    }
    ensure_eq!(
        order,
        vec![
            json!("high-early"),
            json!("high-late"),
            json!("mid-1"),
            json!("mid-2"),
            json!("low")
        ],
        "delivery order"
    );
    Ok(())
}

/// Q3: a job with a future run-at time is not dequeued before it.
pub async fn q3_future_job_waits_for_its_time(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q3")?;
    let at = Timestamp::now().plus(Duration::from_millis(700));
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)).with_run_at(at))
        .await?;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "future job dequeued early"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.scheduled,
        1,
        "scheduled"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    ensure_eq!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .len(),
        1,
        "due job"
    );
    Ok(())
}

/// Q3: a delay is counted from the backend's receipt of the job; `run_at` and `delay`
/// together are refused.
pub async fn q3_delay_counts_from_the_backend_receiving_the_job(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q3d")?;
    let delayed = NewJob::new(json!(1)).with_delay(Duration::from_millis(700));
    expect_kind(
        ctx.set
            .queue
            .enqueue(
                &ctx.tenant,
                &q,
                delayed.clone().with_run_at(Timestamp::now()),
            )
            .await,
        ErrorKind::InvalidInput,
        "run_at and delay together",
    )?;
    ctx.set.queue.enqueue(&ctx.tenant, &q, delayed).await?;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "delayed job dequeued early"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.scheduled,
        1,
        "scheduled"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    ensure_eq!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .len(),
        1,
        "job after its delay"
    );
    Ok(())
}

/// Q4, the one rule for expired leases: a lease that expired stays its holder's until
/// the job is delivered again. A dequeue that takes over one expired job leaves the
/// other's holder able to heartbeat (the lease is live again) and to ack; the holder
/// whose job was taken over is fenced.
pub async fn q4_expired_lease_holds_until_the_job_is_taken_over(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q4x")?;
    ctx.set
        .queue
        .enqueue_batch(
            &ctx.tenant,
            &q,
            vec![NewJob::new(json!("a")), NewJob::new(json!("b"))],
        )
        .await?;
    let first = ctx
        .set
        .queue
        .dequeue(
            &ctx.tenant,
            &q,
            Dequeue::batch(2, Duration::from_millis(300)),
        )
        .await?;
    ensure_eq!(first.len(), 2, "first deliveries");
    tokio::time::sleep(Duration::from_millis(450)).await;
    // Expired, nobody took it yet: its holder may still heartbeat.
    let again = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    let taken = again
        .first()
        .ok_or_else(|| Failure("no job taken over after expiry".into()))?;
    let (lost, kept) = if taken.lease.job_id == first[0].lease.job_id {
        (&first[0], &first[1])
    } else {
        (&first[1], &first[0])
    };
    let revived = ctx
        .set
        .queue
        .heartbeat(&ctx.tenant, &kept.lease, LONG)
        .await?;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "a job whose expired lease was heartbeated was delivered again"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.running,
        2,
        "running after the heartbeat"
    );
    expect_kind(
        ctx.set.queue.ack(&ctx.tenant, &lost.lease).await,
        ErrorKind::LeaseLost,
        "ack of the lease that was taken over",
    )?;
    ctx.set.queue.ack(&ctx.tenant, &revived).await?;
    ctx.set.queue.ack(&ctx.tenant, &taken.lease).await?;
    // Expired with no dequeue in between: ack still succeeds.
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!("c")))
        .await?;
    let late = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(Duration::from_millis(200)))
        .await?;
    let late = late
        .first()
        .ok_or_else(|| Failure("third job not delivered".into()))?;
    tokio::time::sleep(Duration::from_millis(350)).await;
    ctx.set.queue.ack(&ctx.tenant, &late.lease).await?;
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?,
        storage_ports::QueueStats::default(),
        "stats after every ack"
    );
    Ok(())
}

/// Q4: an expired lease on the job's last attempt is taken over by the next dequeue,
/// which marks the job dead; its holder is fenced.
pub async fn q4_expired_last_attempt_dies_at_the_next_dequeue(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q4d")?;
    ctx.set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!("once")).with_max_attempts(1),
        )
        .await?;
    let leased = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(Duration::from_millis(300)))
        .await?;
    let leased = leased
        .first()
        .ok_or_else(|| Failure("job not delivered".into()))?;
    tokio::time::sleep(Duration::from_millis(450)).await;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "a job past its last attempt was delivered again"
    );
    let dead = ctx.set.queue.dead(&ctx.tenant, &q, 10).await?;
    ensure_eq!(dead.len(), 1, "dead jobs");
    ensure_eq!(
        (
            &dead[0].job_id,
            dead[0].attempts,
            dead[0].last_error.as_str()
        ),
        (&leased.lease.job_id, 1, "lease expired on attempt 1 of 1"),
        "dead job"
    );
    expect_kind(
        ctx.set.queue.ack(&ctx.tenant, &leased.lease).await,
        ErrorKind::LeaseLost,
        "ack after the job died",
    )?;
    expect_kind(
        ctx.set
            .queue
            .heartbeat(&ctx.tenant, &leased.lease, LONG)
            .await,
        ErrorKind::LeaseLost,
        "heartbeat after the job died",
    )?;
    Ok(())
}

/// Q4: a leased job is invisible until its lease expires, then comes back with attempt 2.
pub async fn q4_lease_hides_job_until_expiry_then_redelivers(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q4")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)))
        .await?;
    let first = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(Duration::from_millis(500)))
        .await?;
    ensure_eq!(first.len(), 1, "first delivery");
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "leased job visible"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.running,
        1,
        "running"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let again = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    ensure_eq!(again.len(), 1, "redelivery after expiry");
    ensure_eq!(again[0].attempt, 2, "attempt after redelivery");
    ensure!(
        again[0].lease.token != first[0].lease.token,
        "fencing token must change"
    );
    Ok(())
}

/// Q4: a heartbeat extends the lease.
pub async fn q4_heartbeat_extends_the_lease(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q4h")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)))
        .await?;
    let job = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(Duration::from_millis(500)))
        .await?;
    let lease = &job
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    let extended = ctx
        .set
        .queue
        .heartbeat(&ctx.tenant, lease, Duration::from_secs(30))
        .await?;
    ensure!(
        extended.expires_at > lease.expires_at,
        "heartbeat did not move the expiry"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "job redelivered despite heartbeat"
    );
    ctx.set.queue.ack(&ctx.tenant, &extended).await?;
    Ok(())
}

/// Q4: ack, fail or heartbeat with a lease that was taken over is `LeaseLost`.
pub async fn q4_stale_lease_is_fenced(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q4f")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)))
        .await?;
    let old = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(Duration::from_millis(300)))
        .await?;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let new = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    let (old, new) = (
        old.first()
            .ok_or_else(|| Failure("no first lease".into()))?,
        new.first()
            .ok_or_else(|| Failure("no second lease".into()))?,
    );
    expect_kind(
        ctx.set.queue.ack(&ctx.tenant, &old.lease).await,
        ErrorKind::LeaseLost,
        "ack with stale lease",
    )?;
    expect_kind(
        ctx.set
            .queue
            .fail(
                &ctx.tenant,
                &old.lease,
                JobFailure {
                    error: "x".into(),
                    retry: true,
                },
            )
            .await,
        ErrorKind::LeaseLost,
        "fail with stale lease",
    )?;
    expect_kind(
        ctx.set.queue.heartbeat(&ctx.tenant, &old.lease, LONG).await,
        ErrorKind::LeaseLost,
        "heartbeat with stale lease",
    )?;
    ctx.set.queue.ack(&ctx.tenant, &new.lease).await?;
    expect_kind(
        ctx.set.queue.ack(&ctx.tenant, &new.lease).await,
        ErrorKind::LeaseLost,
        "second ack",
    )?;
    Ok(())
}

/// Q5: retries back off exponentially, then the job is dead.
pub async fn q5_retry_backs_off_then_dies(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q5")?;
    let job = NewJob::new(json!(1))
        .with_max_attempts(3)
        .with_backoff(Backoff {
            base_ms: 200,
            cap_ms: 300,
        });
    ctx.set.queue.enqueue(&ctx.tenant, &q, job).await?;
    let mut delays = Vec::new();
    for attempt in 1..=3_u32 {
        let mut leased = Vec::new();
        for _ in 0..50 {
            leased = ctx
                .set
                .queue
                .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
                .await?;
            if !leased.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let j = leased
            .first()
            .ok_or_else(|| Failure(format!("attempt {attempt} never delivered")))?;
        ensure_eq!(j.attempt, attempt, "attempt");
        let before = Timestamp::now();
        match ctx
            .set
            .queue
            .fail(
                &ctx.tenant,
                &j.lease,
                JobFailure {
                    error: format!("boom {attempt}"),
                    retry: true,
                },
            )
            .await?
        {
            FailOutcome::Retrying { at } => {
                delays.push(at.since(before).as_millis());
                ensure!(
                    ctx.set
                        .queue
                        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
                        .await?
                        .is_empty(),
                    "retry delivered before its backoff"
                );
            }
            FailOutcome::Dead => ensure_eq!(attempt, 3, "died early"),
        }
    }
    ensure!(
        delays.len() == 2 && (150..=260).contains(&delays[0]) && (250..=360).contains(&delays[1]),
        "backoff delays {delays:?}, expected ~200 then capped ~300 ms"
    );
    let dead = ctx.set.queue.dead(&ctx.tenant, &q, 10).await?;
    ensure_eq!(
        dead.iter()
            .map(|d| (d.attempts, d.last_error.clone()))
            .collect::<Vec<_>>(),
        vec![(3, "boom 3".to_owned())],
        "dead letter"
    );
    Ok(())
}

/// Q5: failing without retry kills the job; dead jobs list and can be requeued.
pub async fn q5_dead_jobs_list_and_requeue(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q5r")?;
    let e = ctx
        .set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!("poison")))
        .await?;
    let j = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    let j = j
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?;
    ensure_eq!(
        ctx.set
            .queue
            .fail(
                &ctx.tenant,
                &j.lease,
                JobFailure {
                    error: "bad input".into(),
                    retry: false
                }
            )
            .await?,
        FailOutcome::Dead,
        "outcome"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.dead,
        1,
        "dead count"
    );
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "dead job delivered"
    );
    ctx.set.queue.requeue(&ctx.tenant, &q, &e.job_id).await?;
    let again = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    ensure_eq!(
        again.first().map(|j| (j.payload.clone(), j.attempt)),
        Some((json!("poison"), 1)),
        "requeued job"
    );
    expect_kind(
        ctx.set.queue.requeue(&ctx.tenant, &q, &e.job_id).await,
        ErrorKind::NotFound,
        "requeue of a live job",
    )?;
    Ok(())
}

/// Q6: a dedup key makes a second enqueue of a pending job return the first.
pub async fn q6_dedup_key_returns_the_first_job(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q6")?;
    let a = ctx
        .set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(1)).with_dedup_key("run-7"),
        )
        .await?;
    let b = ctx
        .set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(2)).with_dedup_key("run-7"),
        )
        .await?;
    ensure!(!a.deduplicated && b.deduplicated, "dedup flags {a:?} {b:?}");
    ensure_eq!(a.job_id, b.job_id, "job ids");
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.pending,
        1,
        "pending"
    );
    let j = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    ctx.set.queue.ack(&ctx.tenant, &j[0].lease).await?;
    let c = ctx
        .set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(3)).with_dedup_key("run-7"),
        )
        .await?;
    ensure!(
        !c.deduplicated,
        "a key whose job was acknowledged must enqueue anew"
    );
    Ok(())
}

/// Q6: jobs of one batch that carry the key of a job already pending are all
/// deduplicated onto that job, not onto one another.
pub async fn q6_a_batch_repeating_a_pending_key_returns_the_pending_job(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q6b")?;
    let first = ctx
        .set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(0)).with_dedup_key("k"))
        .await?;
    let batch = ctx
        .set
        .queue
        .enqueue_batch(
            &ctx.tenant,
            &q,
            vec![
                NewJob::new(json!(1)).with_dedup_key("k"),
                NewJob::new(json!(2)).with_dedup_key("k"),
            ],
        )
        .await?;
    for (n, r) in batch.iter().enumerate() {
        match r {
            Ok(e) => ensure_eq!(
                (&e.job_id, e.deduplicated),
                (&first.job_id, true),
                "job {n} of the batch"
            ),
            Err(e) => return Err(Failure(format!("job {n} of the batch failed: {e}"))),
        }
    }
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.pending,
        1,
        "pending jobs"
    );
    Ok(())
}

/// Q7: many workers on many jobs: each processed once while its lease holds, none lost.
pub async fn q7_many_workers_process_each_job_once(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q7")?;
    let n = 2_000_u64;
    let jobs: Vec<NewJob> = (0..n).map(|i| NewJob::new(json!(i))).collect();
    for r in ctx.set.queue.enqueue_batch(&ctx.tenant, &q, jobs).await? {
        r?;
    }
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (set, t, q, done) = (ctx.set.clone(), ctx.tenant.clone(), q.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let batch = set.queue.dequeue(&t, &q, Dequeue::batch(16, LONG)).await?;
                if batch.is_empty() {
                    return Ok::<(), Failure>(());
                }
                for j in batch {
                    set.queue.ack(&t, &j.lease).await?;
                    done.lock()
                        .map_err(|_| Failure("lock poisoned".into()))?
                        .push(j.payload);
                }
            }
        }));
    }
    for w in workers {
        w.await
            .map_err(|e| Failure(format!("worker panicked: {e}")))??;
    }
    let done = done.lock().map_err(|_| Failure("lock poisoned".into()))?;
    let unique: HashSet<String> = done.iter().map(ToString::to_string).collect();
    ensure_eq!(
        done.len() as u64,
        n,
        "processed count (duplicates or losses)"
    );
    ensure_eq!(unique.len() as u64, n, "distinct jobs processed");
    Ok(())
}

/// Q8: queues are isolated by name and by tenant.
pub async fn q8_queues_isolated_by_name_and_tenant(ctx: Ctx) -> TestResult {
    let (a, b): (QueueName, QueueName) = (id("q8-a")?, id("q8-b")?);
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &a, NewJob::new(json!("a")))
        .await?;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &b, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "queue b sees a's job"
    );
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.other, &a, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "other tenant sees the job"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.other, &a).await?.pending,
        0,
        "other tenant's stats"
    );
    ensure_eq!(
        ctx.set
            .queue
            .dequeue(&ctx.tenant, &a, Dequeue::one(LONG))
            .await?
            .len(),
        1,
        "own job"
    );
    Ok(())
}

/// Q8: stats count pending, scheduled, running and dead.
pub async fn q8_stats_count_each_state(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q8s")?;
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    for j in [
        NewJob::new(json!(1)).with_priority(9),
        NewJob::new(json!(2)).with_priority(8),
        NewJob::new(json!(3)),
        NewJob::new(json!(4)).with_run_at(later),
    ] {
        ctx.set.queue.enqueue(&ctx.tenant, &q, j).await?;
    }
    let leased = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::batch(2, LONG))
        .await?;
    ensure_eq!(leased.len(), 2, "leased");
    ctx.set
        .queue
        .fail(
            &ctx.tenant,
            &leased[1].lease,
            JobFailure {
                error: "x".into(),
                retry: false,
            },
        )
        .await?;
    let s = ctx.set.queue.stats(&ctx.tenant, &q).await?;
    ensure_eq!(
        (s.pending, s.scheduled, s.running, s.dead),
        (1, 1, 1, 1),
        "stats"
    );
    Ok(())
}

/// Q9: a waiting worker wakes promptly on enqueue, without polling.
pub async fn q9_wait_wakes_promptly_on_enqueue(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q9")?;
    ensure!(
        !ctx.set
            .queue
            .wait(&ctx.tenant, &q, Duration::from_millis(100))
            .await?,
        "wait on an empty queue said work is ready"
    );
    let (set, t, q2) = (ctx.set.clone(), ctx.tenant.clone(), q.clone());
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        set.queue.enqueue(&t, &q2, NewJob::new(json!(1))).await
    });
    let start = std::time::Instant::now();
    let woke = ctx
        .set
        .queue
        .wait(&ctx.tenant, &q, Duration::from_secs(10))
        .await?;
    let waited = start.elapsed();
    producer
        .await
        .map_err(|e| Failure(format!("producer panicked: {e}")))??;
    ensure!(woke, "wait returned without work");
    ensure!(
        waited < Duration::from_secs(2),
        "woke only after {waited:?}"
    );
    Ok(())
}

/// Q10: batches enqueue, lease and ack many jobs per call, each job still single.
pub async fn q10_batches_enqueue_lease_and_ack_many(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q10")?;
    let jobs: Vec<NewJob> = (0..100)
        .map(|i| NewJob::new(json!(i)).with_priority(i % 3))
        .collect();
    let ids: Vec<_> = ctx
        .set
        .queue
        .enqueue_batch(&ctx.tenant, &q, jobs)
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    ensure_eq!(
        ids.iter()
            .map(|e| e.job_id.clone())
            .collect::<HashSet<_>>()
            .len(),
        100,
        "distinct ids"
    );
    let leased = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::batch(60, LONG))
        .await?;
    ensure_eq!(leased.len(), 60, "first batch");
    ensure!(
        leased.windows(2).all(|w| w[0].priority >= w[1].priority),
        "batch not in priority order"
    );
    let rest = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::batch(60, LONG))
        .await?;
    ensure_eq!(rest.len(), 40, "second batch");
    let leases: Vec<_> = leased
        .iter()
        .chain(rest.iter())
        .map(|j| j.lease.clone())
        .collect();
    let acks = ctx.set.queue.ack_batch(&ctx.tenant, &leases).await?;
    ensure!(acks.iter().all(Result::is_ok), "an ack in the batch failed");
    let again = ctx.set.queue.ack_batch(&ctx.tenant, &leases[..2]).await?;
    ensure!(
        again
            .iter()
            .all(|r| matches!(r, Err(e) if e.kind() == ErrorKind::LeaseLost)),
        "re-ack must be lease_lost per job"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?,
        storage_ports::QueueStats::default(),
        "stats"
    );
    Ok(())
}

/// Q10: a lease named twice in one ack batch acks once; its second mention is
/// `LeaseLost`, as a second call would be.
pub async fn q10_a_lease_twice_in_one_ack_batch_acks_once(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q10d")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)))
        .await?;
    let leased = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    let lease = &leased
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    let acks = ctx
        .set
        .queue
        .ack_batch(&ctx.tenant, &[lease.clone(), lease.clone()])
        .await?;
    ensure_eq!(acks.len(), 2, "results");
    ensure!(acks[0].is_ok(), "first mention: {:?}", acks[0]);
    ensure!(
        matches!(&acks[1], Err(e) if e.kind() == ErrorKind::LeaseLost),
        "second mention must be LeaseLost: {:?}",
        acks[1]
    );
    Ok(())
}

/// O4 for dead letters: a dead job is exported with how it died, imported elsewhere as
/// a dead letter (listed, not delivered, requeueable), and importing it twice is
/// `AlreadyExists`.
pub async fn o4_dead_jobs_export_and_import(ctx: Ctx) -> TestResult {
    let q: QueueName = id("o4-dead")?;
    ctx.set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!("doomed")).with_max_attempts(1),
        )
        .await?;
    let leased = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LONG))
        .await?;
    let lease = &leased
        .first()
        .ok_or_else(|| Failure("nothing to lease".into()))?
        .lease;
    ctx.set
        .queue
        .fail(
            &ctx.tenant,
            lease,
            storage_ports::JobFailure {
                error: "gave up".into(),
                retry: false,
            },
        )
        .await?;
    let exported = ctx.set.job_transfer.export_jobs(&ctx.tenant).await?;
    let dead = exported
        .iter()
        .find(|j| j.queue == q)
        .ok_or_else(|| Failure("the dead job is not exported".into()))?;
    let state = dead
        .dead
        .clone()
        .ok_or_else(|| Failure("the dead job is exported as pending".into()))?;
    ensure_eq!(
        (state.attempts, state.last_error.as_str()),
        (1, "gave up"),
        "dead state"
    );
    ctx.set
        .job_transfer
        .import_dead(&ctx.other, &q, dead.job.clone(), state.clone())
        .await?;
    ensure!(
        ctx.set
            .queue
            .dequeue(&ctx.other, &q, Dequeue::one(LONG))
            .await?
            .is_empty(),
        "an imported dead letter was delivered"
    );
    let listed = ctx.set.queue.dead(&ctx.other, &q, 10).await?;
    ensure_eq!(listed.len(), 1, "imported dead letters");
    ensure_eq!(listed[0].last_error.as_str(), "gave up", "its last error");
    let again = ctx
        .set
        .job_transfer
        .import_dead(&ctx.other, &q, dead.job.clone(), state)
        .await;
    crate::check::expect_kind(again, ErrorKind::AlreadyExists, "importing it twice")?;
    let job_id = dead.job.id.clone().ok_or_else(|| Failure("no id".into()))?;
    ctx.set.queue.requeue(&ctx.other, &q, &job_id).await?;
    ensure_eq!(
        ctx.set
            .queue
            .dequeue(&ctx.other, &q, Dequeue::one(LONG))
            .await?
            .len(),
        1,
        "the requeued import"
    );
    Ok(())
}
