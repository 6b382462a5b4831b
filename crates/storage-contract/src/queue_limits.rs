//! Q18: concurrency limits — at most N running jobs per concurrency key, and per
//! queue, enforced when jobs are claimed, without head-of-line blocking.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{Dequeue, ErrorKind, LeasedJob, NewJob, QueueName};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const LONG: Duration = Duration::from_secs(60);

fn keyed(key: &str, priority: i32) -> NewJob {
    NewJob::new(json!(key))
        .with_concurrency_key(key)
        .with_priority(priority)
}

fn count_by_payload(jobs: &[LeasedJob]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for j in jobs {
        *out.entry(j.payload.as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    out
}

/// Q18: a dequeue with a key limit leases at most that many running jobs per key
/// and takes other keys' (and unkeyed) jobs past a key at its limit; an ack frees a
/// place; an expired lease does not hold one; a queue limit caps the running jobs of
/// the queue; a limit of 0 is `InvalidInput`. `running_by_key` shows what is counted.
pub async fn q18_a_key_at_its_limit_does_not_block_other_keys(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.queue, &ctx.tenant);
    let q: QueueName = id("q18")?;
    // Key a's jobs come first in priority order: without the limit they would fill
    // the batch.
    let mut jobs: Vec<NewJob> = (0..3).map(|_| keyed("a", 9)).collect();
    jobs.extend((0..2).map(|_| keyed("b", 1)));
    jobs.push(NewJob::new(json!("none")));
    for r in s.enqueue_batch(t, &q, jobs).await? {
        r?;
    }
    let limited = Dequeue::batch(10, LONG).with_key_limit(2);
    let first = s.dequeue(t, &q, limited.clone()).await?;
    let counts = count_by_payload(&first);
    ensure_eq!(
        (counts.get("a"), counts.get("b"), counts.get("none")),
        (Some(&2), Some(&2), Some(&1)),
        "jobs leased per key with a limit of 2"
    );
    ensure!(
        s.dequeue(t, &q, limited.clone()).await?.is_empty(),
        "key a is at its limit and nothing else is ready"
    );
    ensure_eq!(
        s.running_by_key(t, &q).await?,
        vec![("a".to_owned(), 2), ("b".to_owned(), 2)],
        "running jobs per key, busiest first"
    );
    let a_lease = first
        .iter()
        .find(|j| j.payload == json!("a"))
        .map(|j| j.lease.clone())
        .ok_or_else(|| Failure("no job of key a".into()))?;
    s.ack(t, &a_lease).await?;
    let third = s.dequeue(t, &q, limited.clone()).await?;
    ensure_eq!(
        third.iter().map(|j| j.payload.clone()).collect::<Vec<_>>(),
        vec![json!("a")],
        "an ack frees a place for key a's third job"
    );

    // An expired lease does not hold a place.
    let c: QueueName = id("q18c")?;
    for r in s
        .enqueue_batch(t, &c, vec![keyed("c", 0), keyed("c", 0)])
        .await?
    {
        r?;
    }
    let one = Dequeue::one(Duration::from_millis(200)).with_key_limit(1);
    ensure_eq!(
        s.dequeue(t, &c, one.clone()).await?.len(),
        1,
        "first of key c"
    );
    ensure!(
        s.dequeue(t, &c, one.clone()).await?.is_empty(),
        "key c is at its limit of 1"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_eq!(
        s.dequeue(t, &c, one).await?.len(),
        1,
        "a key whose only lease expired is below its limit"
    );

    // A queue limit.
    let w: QueueName = id("q18w")?;
    for r in s
        .enqueue_batch(t, &w, (0..5).map(|i| NewJob::new(json!(i))).collect())
        .await?
    {
        r?;
    }
    let capped = Dequeue::batch(10, LONG).with_queue_limit(3);
    let got = s.dequeue(t, &w, capped.clone()).await?;
    ensure_eq!(got.len(), 3, "a queue limit of 3 leases 3");
    ensure!(
        s.dequeue(t, &w, capped.clone()).await?.is_empty(),
        "the queue is at its limit"
    );
    s.ack(t, &got[0].lease).await?;
    ensure_eq!(
        s.dequeue(t, &w, capped).await?.len(),
        1,
        "an ack frees one place in the queue"
    );
    expect_kind(
        s.dequeue(t, &w, Dequeue::one(LONG).with_key_limit(0)).await,
        ErrorKind::InvalidInput,
        "a key limit of 0",
    )?;
    Ok(())
}

/// Q18 under load: 8 workers, 20 keys of 10 jobs (enqueued key after key), a limit
/// of 2 per key. Each worker
/// counts the jobs it holds per key from the moment a dequeue returns them until
/// before it acks them; the sum over workers never exceeds 2 for a key, and every job
/// is processed exactly once.
pub async fn q18_limits_hold_under_many_workers(ctx: Ctx) -> TestResult {
    let q: QueueName = id("q18l")?;
    // Key-major: the head of the queue is one key's jobs, which a claim must skip past.
    let mut jobs = Vec::new();
    for k in 0..20 {
        for i in 0..10 {
            jobs.push(NewJob::new(json!({"key": k, "n": i})).with_concurrency_key(format!("k{k}")));
        }
    }
    for r in ctx.set.queue.enqueue_batch(&ctx.tenant, &q, jobs).await? {
        r?;
    }
    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let worst = Arc::new(Mutex::new(0_usize));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (set, t, q) = (ctx.set.clone(), ctx.tenant.clone(), q.clone());
        let (running, done, worst) = (running.clone(), done.clone(), worst.clone());
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 20 {
                let batch = set
                    .queue
                    .dequeue(&t, &q, Dequeue::batch(4, LONG).with_key_limit(2))
                    .await?;
                if batch.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                idle = 0;
                let keys: Vec<String> = batch
                    .iter()
                    .map(|j| format!("k{}", j.payload["key"]))
                    .collect();
                if let Ok(mut r) = running.lock() {
                    for k in &keys {
                        let n = r.entry(k.clone()).or_default();
                        *n += 1;
                        if let Ok(mut w) = worst.lock() {
                            *w = (*w).max(*n);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                if let Ok(mut r) = running.lock() {
                    for k in &keys {
                        if let Some(n) = r.get_mut(k) {
                            *n -= 1;
                        }
                    }
                }
                for j in batch {
                    set.queue.ack(&t, &j.lease).await?;
                    if let Ok(mut d) = done.lock() {
                        d.push(j.lease.job_id.to_string());
                    }
                }
            }
            Ok::<(), storage_ports::Error>(())
        }));
    }
    for w in workers {
        w.await
            .map_err(|e| Failure(format!("worker panicked: {e}")))??;
    }
    let worst = worst.lock().map(|w| *w).unwrap_or(usize::MAX);
    ensure!(
        worst <= 2,
        "a key had {worst} jobs running at once, above its limit of 2"
    );
    let done = done.lock().map(|d| d.clone()).unwrap_or_default();
    let distinct: HashSet<&String> = done.iter().collect();
    ensure_eq!(
        (done.len(), distinct.len()),
        (200, 200),
        "(jobs processed, distinct jobs) of 200"
    );
    Ok(())
}
