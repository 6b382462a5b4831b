//! Q11-Q12: what engines expect of a queue beyond leasing: pause and resume, snooze.

use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{Dequeue, ErrorKind, NewJob, QueueName, Timestamp};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const LONG: Duration = Duration::from_secs(60);

/// Q11: a paused queue delivers nothing and takes no expired lease back, while
/// enqueues are accepted and leases already out keep working; other queues go on; a
/// resumed queue delivers at once. Pausing and resuming twice change nothing.
pub async fn q11_a_paused_queue_delivers_nothing_until_resumed(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let (q, other): (QueueName, QueueName) = (id("q11")?, id("q11-other")?);
    for n in 0..3 {
        s.enqueue(t, &q, NewJob::new(json!(n))).await?;
    }
    s.enqueue(t, &other, NewJob::new(json!("other"))).await?;
    let held = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    let short = s
        .dequeue(t, &q, Dequeue::one(Duration::from_millis(100)))
        .await?;
    let (held, short) = match (held.first(), short.first()) {
        (Some(h), Some(s)) => (h.lease.clone(), s.lease.clone()),
        _ => return Err(Failure("two jobs should be leased before the pause".into())),
    };
    s.pause(t, &q).await?;
    s.pause(t, &q).await?;
    ensure!(s.stats(t, &q).await?.paused, "stats should say paused");
    ensure!(
        !s.stats(t, &other).await?.paused,
        "only the one queue is paused"
    );
    s.enqueue(t, &q, NewJob::new(json!("while paused"))).await?;
    tokio::time::sleep(Duration::from_millis(150)).await;
    ensure!(
        s.dequeue(t, &q, Dequeue::batch(10, LONG)).await?.is_empty(),
        "a paused queue delivered a job (ready, or an expired lease taken back)"
    );
    let extended = s.heartbeat(t, &held, LONG).await?;
    s.ack(t, &extended).await?;
    ensure_eq!(
        s.dequeue(t, &other, Dequeue::one(LONG)).await?.len(),
        1,
        "another queue delivers while this one is paused"
    );
    if ctx.set.operations.capabilities().queue_wait {
        let started = tokio::time::Instant::now();
        let woke = s.wait(t, &q, Duration::from_millis(300)).await?;
        ensure!(
            !woke && started.elapsed() >= Duration::from_millis(250),
            "wait woke for a paused queue"
        );
    }
    s.resume(t, &q).await?;
    s.resume(t, &q).await?;
    ensure!(!s.stats(t, &q).await?.paused, "stats should say resumed");
    let after = s.dequeue(t, &q, Dequeue::batch(10, LONG)).await?;
    // The one never leased, the expired lease taken back, the one enqueued while paused.
    ensure_eq!(after.len(), 3, "a resumed queue delivers what waited");
    ensure!(
        after.iter().any(|j| j.lease.job_id == short.job_id),
        "the expired lease is taken back once resumed"
    );
    Ok(())
}

/// Q11: a waiter on a paused queue wakes when the queue is resumed.
pub async fn q11_resume_wakes_waiters(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q11w")?;
    let s = ctx.set.queue.clone();
    let t = ctx.tenant.clone();
    s.pause(&t, &q).await?;
    s.enqueue(&t, &q, NewJob::new(json!(1))).await?;
    let (s2, t2, q2) = (s.clone(), t.clone(), q.clone());
    let waiter = tokio::spawn(async move { s2.wait(&t2, &q2, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(!waiter.is_finished(), "wait returned for a paused queue");
    let resumed = tokio::time::Instant::now();
    s.resume(&t, &q).await?;
    let woke = waiter
        .await
        .map_err(|e| Failure(format!("waiter: {e}")))??;
    ensure!(woke, "wait should report work once the queue is resumed");
    ensure!(
        resumed.elapsed() < Duration::from_secs(5),
        "wait took {:?} to notice the resume",
        resumed.elapsed()
    );
    Ok(())
}

/// Q12: a lease holder snoozes its job: it is due again after the delay (by the
/// backend's clock), the attempt it used is given back, and the old lease is stale.
pub async fn q12_snooze_puts_the_job_back_without_using_an_attempt(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q12")?;
    s.enqueue(t, &q, NewJob::new(json!("x")).with_max_attempts(2))
        .await?;
    let first = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    let lease = &first
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    let before = Timestamp::now();
    let due = s.snooze(t, lease, Duration::from_millis(400)).await?;
    ensure!(
        due > before.plus(Duration::from_millis(100)),
        "snoozed until {due:?}, but asked for 400 ms after {before:?}"
    );
    ensure!(
        s.dequeue(t, &q, Dequeue::one(LONG)).await?.is_empty(),
        "a snoozed job was delivered before its time"
    );
    ensure_eq!(s.stats(t, &q).await?.scheduled, 1, "the snoozed job waits");
    expect_kind(
        s.ack(t, lease).await,
        ErrorKind::LeaseLost,
        "ack after snooze",
    )?;
    expect_kind(
        s.snooze(t, lease, Duration::from_millis(1)).await,
        ErrorKind::LeaseLost,
        "a second snooze with the same lease",
    )?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = s.dequeue(t, &q, Dequeue::one(LONG)).await?;
    let job = again
        .first()
        .ok_or_else(|| Failure("the snoozed job did not come back".into()))?;
    ensure_eq!(job.attempt, 1, "snoozing gives the attempt back");
    expect_kind(
        s.snooze(
            t,
            &job.lease,
            storage_ports::queue::MAX_DELAY + Duration::from_secs(1),
        )
        .await,
        ErrorKind::InvalidInput,
        "a snooze over the longest delay",
    )?;
    s.ack(t, &job.lease).await?;
    Ok(())
}

/// Q13: a worker acknowledges its batch and leases the next in one call: the acks have
/// their results per lease (a stale one is `LeaseLost`), the acknowledged jobs are
/// gone, and the new leases are the best of what is ready; a paused queue leases
/// nothing, while the acks still count.
pub async fn q13_ack_and_lease_the_next_batch_in_one_call(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q13")?;
    for n in 0..5 {
        s.enqueue(t, &q, NewJob::new(json!(n)).with_priority(10 - n))
            .await?;
    }
    let first = s.dequeue(t, &q, Dequeue::batch(2, LONG)).await?;
    ensure_eq!(first.len(), 2, "first batch");
    let mut done: Vec<_> = first.iter().map(|j| j.lease.clone()).collect();
    let mut stale = done[0].clone();
    stale.token = stale.token.wrapping_add(1_000_000);
    done.push(stale);
    let step = s
        .ack_and_dequeue(t, &done, &q, Dequeue::batch(2, LONG))
        .await?;
    ensure_eq!(step.acked.len(), 3, "one ack result per lease");
    ensure!(
        step.acked[0].is_ok() && step.acked[1].is_ok(),
        "the current leases are acknowledged: {:?}",
        step.acked
    );
    ensure!(
        step.acked[2]
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::LeaseLost),
        "a stale lease is LeaseLost: {:?}",
        step.acked[2]
    );
    let payloads: Vec<_> = step.leased.iter().map(|j| j.payload.clone()).collect();
    ensure_eq!(payloads, vec![json!(2), json!(3)], "the next best jobs");
    let stats = s.stats(t, &q).await?;
    ensure_eq!(
        (stats.pending, stats.running),
        (1, 2),
        "two acknowledged, two leased, one waiting"
    );
    if ctx.set.operations.capabilities().queue_pause {
        s.pause(t, &q).await?;
        let done: Vec<_> = step.leased.iter().map(|j| j.lease.clone()).collect();
        let paused = s
            .ack_and_dequeue(t, &done, &q, Dequeue::batch(2, LONG))
            .await?;
        ensure!(
            paused.acked.iter().all(Result::is_ok) && paused.leased.is_empty(),
            "on a paused queue the acks count and nothing is leased: {paused:?}"
        );
        s.resume(t, &q).await?;
    }
    expect_kind(
        s.ack_and_dequeue(t, &[], &q, Dequeue::batch(0, LONG)).await,
        ErrorKind::InvalidInput,
        "a batch of 0",
    )?;
    Ok(())
}
