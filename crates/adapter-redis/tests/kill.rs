//! Fencing across a crash: the Redis server is killed with SIGKILL while workers
//! dequeue and ack, under the persistence the docs recommend (append-only file,
//! `appendfsync everysec`), and its file loses the tail a machine crash would take
//! with it (writes not yet fsynced, so the token counter goes back); then it restarts
//! from what is left. Must hold afterwards:
//!
//! - no fencing token is issued twice, and every token after the restart is above
//!   every token before the crash, even those the crash made the server forget;
//! - the holder of a lease issued before the crash cannot ack, fail or heartbeat its
//!   job once the job has been delivered again.
//!
//! Alone in its binary: the kill cuts every connection to the server.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapter_redis::RedisStore;
use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::{
    Dequeue, ErrorKind, JobFailure, JobQueue, JobQueueExt as _, Lease, NewJob, QueueName,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every lease this test was handed, in the order it got them.
type Issued = Arc<Mutex<Vec<Lease>>>;

fn record(issued: &Issued, leases: impl IntoIterator<Item = Lease>) {
    issued
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_reissues_no_token() -> TestResult {
    let store = Arc::new(RedisStore::connect(&server_env("FLOWSTORE_TEST_REDIS_URL")?).await?);
    let kill = server_env("FLOWSTORE_TEST_REDIS_KILL")?;
    let t = fresh_tenant()?;
    // Workers use `q`; the leases held across the crash are of `qh`, which no worker
    // touches, so only the check below delivers those jobs again.
    let (q, qh) = (QueueName::new("kill")?, QueueName::new("kill-held")?);
    let jobs: Vec<NewJob> = (0..20_000)
        .map(|i| NewJob::new(json!({ "i": i })))
        .collect();
    store.enqueue_batch(&t, &q, jobs).await?;
    let kept: Vec<NewJob> = (0..50).map(|i| NewJob::new(json!({ "held": i }))).collect();
    store.enqueue_batch(&t, &qh, kept).await?;

    // Leases held across the crash, never acked by their holder.
    let held: Vec<Lease> = store
        .dequeue(&t, &qh, Dequeue::batch(50, Duration::from_secs(1)))
        .await?
        .into_iter()
        .map(|j| j.lease)
        .collect();
    let issued: Issued = Arc::new(Mutex::new(held.clone()));

    // Workers dequeue and ack until told to stop; errors while the server is down are
    // expected and retried.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (store, t, q, issued, stop) = (
            store.clone(),
            t.clone(),
            q.clone(),
            issued.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut errors = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match store
                    .dequeue(&t, &q, Dequeue::batch(5, Duration::from_secs(1)))
                    .await
                {
                    Ok(got) => {
                        let leases: Vec<Lease> = got.into_iter().map(|j| j.lease).collect();
                        record(&issued, leases.clone());
                        if store.ack_batch(&t, &leases).await.is_err() {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            errors
        }));
    }
    // Past one `everysec` fsync, so the held leases are on disk; the workers' last
    // second is not.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before: Vec<Lease> = issued
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    // SIGKILL, and the append-only file loses its last 256 KiB (about a tenth of a
    // second of this workload), as a machine crash under `everysec` may.
    let killed =
        tokio::task::spawn_blocking(move || Command::new("sh").arg(&kill).arg("262144").status())
            .await??;
    assert!(killed.success(), "the kill-and-start script failed");
    // Work on after the restart, then stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut errors = 0;
    for w in workers {
        errors += w.await?;
    }

    // Every held lease has expired by now; deliver what is left again.
    let mut again = Vec::new();
    for queue in [&qh, &q] {
        loop {
            let got = store
                .dequeue(&t, queue, Dequeue::batch(1000, Duration::from_secs(60)))
                .await?;
            if got.is_empty() {
                break;
            }
            again.extend(got.into_iter().map(|j| j.lease));
        }
    }
    record(&issued, again.clone());
    let all = issued
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();

    let mut seen = HashSet::new();
    let reissued: Vec<u64> = all
        .iter()
        .map(|l| l.token)
        .filter(|t| !seen.insert(*t))
        .collect();
    assert!(reissued.is_empty(), "tokens issued twice: {reissued:?}");
    let highest_before = before.iter().map(|l| l.token).max().unwrap_or(0);
    let lowest_after = again.iter().map(|l| l.token).min().unwrap_or(u64::MAX);
    assert!(
        lowest_after > highest_before,
        "a token after the restart ({lowest_after}) is not above the tokens before it ({highest_before})"
    );

    // The held leases' jobs that were delivered again: their old holders are fenced.
    let redelivered: HashSet<_> = again.iter().map(|l| l.job_id.clone()).collect();
    let fenced: Vec<&Lease> = held
        .iter()
        .filter(|l| redelivered.contains(&l.job_id))
        .collect();
    assert!(
        !fenced.is_empty(),
        "no held job was delivered again after the restart, so nothing was checked"
    );
    for old in &fenced {
        let lost = |r: Result<(), storage_ports::Error>, what: &str| match r {
            Err(e) if e.kind() == ErrorKind::LeaseLost => Ok(()),
            other => Err(format!(
                "{what} with a lease from before the crash: {other:?}"
            )),
        };
        lost(store.ack(&t, old).await, "ack")?;
        lost(
            store
                .fail(
                    &t,
                    old,
                    JobFailure {
                        error: "late".into(),
                        retry: true,
                    },
                )
                .await
                .map(|_| ()),
            "fail",
        )?;
        lost(
            store
                .heartbeat(&t, old, Duration::from_secs(60))
                .await
                .map(|_| ()),
            "heartbeat",
        )?;
    }
    store.ack_batch(&t, &again).await?;
    // Jobs delivered more than once: the held ones, plus those whose ack the crash
    // made the server forget (up to a second's worth under `everysec`).
    let mut delivered = HashSet::new();
    let redeliveries = all.iter().filter(|l| !delivered.insert(&l.job_id)).count();
    eprintln!(
        "redis kill: {} leases issued ({} before the kill), {} redeliveries, {} held leases fenced after redelivery, {} calls failed while the server was down",
        all.len(),
        before.len(),
        redeliveries,
        fenced.len(),
        errors
    );
    Ok(())
}
