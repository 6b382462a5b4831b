//! Three schedulers on one backend, no leader (Q19): three `Storage` instances (as
//! three engine nodes would hold) share one PostgreSQL, then one Redis, each running
//! `scheduler::fire_due` in its own loop, while a worker acks the jobs as they come.
//! Over at least 100 ticks of a 150 ms schedule, every tick is enqueued exactly once:
//! the ticks of the jobs stored are consecutive, none twice, and the schedulers'
//! enqueues stored as many jobs as there are ticks, every other being deduplicated.
//!
//! Needs the servers `cargo xtask test` starts.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::rules::schedule::tick_of;
use storage_ports::{
    CatchUp, Dequeue, JobQueueExt as _, NewJob, NewSchedule, QueueName, ScheduleName, TenantId,
    Timing,
};
use storage_wiring::scheduler::{fire_due, FireReport};
use storage_wiring::{Storage, StorageConfig};

const EVERY_MS: u64 = 150;
const TICKS: usize = 100;

async fn node(kind: &str, url: &str) -> Result<Storage, Box<dyn std::error::Error>> {
    let yaml = format!(
        "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ncredentials: {{ type: memory }}\ndocuments: {{ type: memory }}\nqueue: {{ type: {kind}, url: \"{url}\" }}\n"
    );
    Ok(Storage::build(&StorageConfig::from_yaml(&yaml)?).await?)
}

async fn three_schedulers(kind: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let nodes = [
        node(kind, url).await?,
        node(kind, url).await?,
        node(kind, url).await?,
    ];
    let t: TenantId = fresh_tenant()?;
    let q = QueueName::new("reports")?;
    let first = &nodes[0].ports();
    first
        .schedules
        .put_schedule(
            &t,
            NewSchedule {
                name: ScheduleName::new("minutely")?,
                queue: q.clone(),
                timing: Timing::Every { every_ms: EVERY_MS },
                job: NewJob::new(json!({"report": "sales"})),
                catch_up: CatchUp::Skip,
            },
        )
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Mutex::new(FireReport::default()));
    let mut loops = Vec::new();
    for n in &nodes {
        let (set, t, stop, totals) = (n.ports().clone(), t.clone(), stop.clone(), totals.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = fire_due(&set, &t).await?;
                if let Ok(mut all) = totals.lock() {
                    all.fired += r.fired;
                    all.deduplicated += r.deduplicated;
                    all.skipped += r.skipped;
                    all.advanced += r.advanced;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok::<(), storage_ports::Error>(())
        }));
    }
    // A worker acks what comes, so the ticks' jobs finish while schedulers still run.
    let mut ticks = BTreeSet::new();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ticks.len() < TICKS && tokio::time::Instant::now() < deadline {
        let batch = first
            .queue
            .dequeue(&t, &q, Dequeue::batch(10, Duration::from_secs(30)))
            .await?;
        for j in &batch {
            seen += 1;
            ticks.insert(tick_of(&j.lease.job_id).ok_or("a job id that is not a tick's")?);
            first.queue.ack(&t, &j.lease).await?;
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await??;
    }
    // What the schedulers stored after the worker stopped looking.
    loop {
        let batch = first
            .queue
            .dequeue(&t, &q, Dequeue::batch(100, Duration::from_secs(30)))
            .await?;
        if batch.is_empty() {
            break;
        }
        for j in &batch {
            seen += 1;
            ticks.insert(tick_of(&j.lease.job_id).ok_or("a job id that is not a tick's")?);
            first.queue.ack(&t, &j.lease).await?;
        }
    }
    let totals = *totals.lock().map_err(|_| "poisoned")?;
    assert!(
        ticks.len() >= TICKS,
        "{kind}: only {} ticks in 60 s",
        ticks.len()
    );
    assert_eq!(seen, ticks.len(), "{kind}: a tick was delivered twice");
    let list: Vec<i64> = ticks.iter().map(|t| t.as_micros()).collect();
    for pair in list.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            i64::try_from(EVERY_MS * 1000)?,
            "{kind}: a tick is missing between {} and {}",
            pair[0],
            pair[1]
        );
    }
    assert_eq!(
        totals.fired,
        ticks.len(),
        "{kind}: jobs stored by the schedulers ({totals:?}) against ticks"
    );
    assert_eq!(totals.skipped, 0, "{kind}: {totals:?}");
    println!(
        "{kind}: {} ticks, each once; {} duplicate enqueues absorbed, {} advances",
        ticks.len(),
        totals.deduplicated,
        totals.advanced
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_on_postgres_fire_each_tick_once() -> Result<(), Box<dyn std::error::Error>>
{
    three_schedulers("postgres", &server_env("FLOWSTORE_TEST_POSTGRES_URL")?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_on_redis_fire_each_tick_once() -> Result<(), Box<dyn std::error::Error>> {
    three_schedulers("redis", &server_env("FLOWSTORE_TEST_REDIS_URL")?).await
}
