//! Q7 at scale, for server backends: many workers, thousands of jobs, short leases and
//! workers that stall past their lease, so that jobs really are delivered again.
//!
//! What it checks:
//! - every job is acknowledged exactly once (acks of stale leases are refused);
//! - none is lost: the queue is empty afterwards, nothing dead;
//! - no job was leased to two workers at once: for each job, every lease starts after
//!   the previous one expired, unless that one was acknowledged (then there is none).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use storage_ports::{Dequeue, ErrorKind, JobQueue, NewJob, QueueName, TenantId, Timestamp};

use crate::check::Failure;

/// What one run of [`q7_at_scale`] saw.
#[derive(Debug, Clone, Copy)]
pub struct ScaleReport {
    /// Jobs enqueued and acknowledged.
    pub jobs: u64,
    /// Leases handed out (jobs + redeliveries).
    pub leases: u64,
    /// Acks refused because the lease had been taken over.
    pub stale_acks: u64,
    /// Wall time from the first enqueue to the last ack.
    pub elapsed: Duration,
}

/// Runs Q7 with `jobs` jobs and `workers` concurrent workers on `queue`. One lease in
/// `stall_every` is held past its expiry before it is acknowledged.
///
/// # Errors
/// A `Failure` naming the broken property, or a backend error.
pub async fn q7_at_scale(
    queue: Arc<dyn JobQueue>,
    tenant: TenantId,
    jobs: u64,
    workers: usize,
    lease: Duration,
    stall_every: u64,
) -> Result<ScaleReport, Failure> {
    let q = QueueName::new(format!("scale-{}", storage_ports::RunId::generate()))?;
    let started = std::time::Instant::now();
    let all: Vec<NewJob> = (0..jobs).map(|i| NewJob::new(json!(i))).collect();
    for chunk in all.chunks(1_000) {
        for r in queue.enqueue_batch(&tenant, &q, chunk.to_vec()).await? {
            r?;
        }
    }
    // Per job: the leases it got (grant time, expiry, token), and its successful acks.
    type Leases = HashMap<u64, Vec<(Timestamp, Timestamp, u64)>>;
    let leases: Arc<Mutex<Leases>> = Arc::default();
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stale = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (queue, t, q) = (queue.clone(), tenant.clone(), q.clone());
        let (leases, acked, stale, seen) =
            (leases.clone(), acked.clone(), stale.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut idle_rounds = 0;
            loop {
                let granted = Timestamp::now();
                let batch = queue.dequeue(&t, &q, Dequeue::batch(16, lease)).await?;
                if batch.is_empty() {
                    // Jobs of stalled workers come back when their lease expires.
                    if acked.lock().map_err(|_| poisoned())?.len() as u64 >= jobs {
                        return Ok::<(), Failure>(());
                    }
                    idle_rounds += 1;
                    if idle_rounds > 200 {
                        return Err(Failure(
                            "workers starved: jobs are neither delivered nor acknowledged".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                idle_rounds = 0;
                let mut to_ack = Vec::new();
                for j in batch {
                    let n = j.payload.as_u64().ok_or_else(|| {
                        Failure(format!("payload {} is not a job number", j.payload))
                    })?;
                    leases
                        .lock()
                        .map_err(|_| poisoned())?
                        .entry(n)
                        .or_default()
                        .push((granted, j.lease.expires_at, j.lease.token));
                    let k = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if stall_every > 0 && k % stall_every == stall_every - 1 {
                        // A stalled worker: its lease expires, someone else takes over,
                        // and its late ack must be refused.
                        tokio::time::sleep(lease + Duration::from_millis(300)).await;
                    }
                    to_ack.push((n, j.lease));
                }
                let results = queue
                    .ack_batch(
                        &t,
                        &to_ack.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
                    )
                    .await?;
                for ((n, _), r) in to_ack.iter().zip(results) {
                    match r {
                        Ok(()) => acked.lock().map_err(|_| poisoned())?.push(*n),
                        Err(e) if e.kind() == ErrorKind::LeaseLost => {
                            stale.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| Failure(format!("worker panicked: {e}")))??;
    }
    let elapsed = started.elapsed();
    let acked = acked.lock().map_err(|_| poisoned())?.clone();
    let unique: HashSet<u64> = acked.iter().copied().collect();
    if acked.len() as u64 != jobs || unique.len() as u64 != jobs {
        return Err(Failure(format!(
            "{} successful acks of {} distinct jobs; expected exactly {jobs} of {jobs}",
            acked.len(),
            unique.len()
        )));
    }
    let leases = leases.lock().map_err(|_| poisoned())?.clone();
    let mut handed = 0_u64;
    for (n, mut ls) in leases {
        handed += ls.len() as u64;
        ls.sort_by_key(|l| l.1);
        for pair in ls.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            // `next` was granted no earlier than the call that returned it began; the
            // server grants it at its start time at the latest, which is
            // expiry - lease. Either bound must be after the previous expiry.
            let server_grant = Timestamp::from_micros(
                next.1.as_micros() - i64::try_from(lease.as_micros()).unwrap_or(i64::MAX),
            );
            if server_grant.max(next.0) < prev.1 {
                return Err(Failure(format!(
                    "job {n} was leased again (token {}) at {} while lease {} held until {}",
                    next.2,
                    server_grant.max(next.0).as_micros(),
                    prev.2,
                    prev.1.as_micros()
                )));
            }
        }
    }
    let stats = queue.stats(&tenant, &q).await?;
    if stats.pending + stats.scheduled + stats.running + stats.dead != 0 {
        return Err(Failure(format!(
            "jobs left in the queue afterwards: {stats:?}"
        )));
    }
    Ok(ScaleReport {
        jobs,
        leases: handed,
        stale_acks: stale.load(std::sync::atomic::Ordering::Relaxed),
        elapsed,
    })
}

fn poisoned() -> Failure {
    Failure("a worker panicked holding a lock".into())
}
