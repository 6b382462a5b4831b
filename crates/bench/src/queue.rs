//! P3, queue throughput: enqueue N jobs in batches of 500, then 4 workers dequeue
//! batches of 50 with leases and acknowledge them, through flowstore and through the
//! raw driver doing the same work (the same tables or keys, leases included, without
//! flowstore's checks, fencing and dead-letter handling).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use storage_ports::{Dequeue, NewJob, QueueName, RunId, StoreSet, TenantId, Timestamp};

use crate::apalis_peer::Peer;
use crate::backends::Backend;
use crate::measure::{rotate, Figure, Side};

const WORKERS: usize = 4;
const ENQUEUE_BATCH: usize = 500;
const DEQUEUE_BATCH: usize = 50;

/// What the jobs of a flowstore round carry (issue 15's P3 variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Plain jobs.
    Plain,
    /// 100 concurrency keys, dequeued with a limit of 2 per key (Q18).
    Keys,
    /// A unique key per job with a unique period of an hour (Q17).
    Unique,
}

const KEYS: usize = 100;
const KEY_LIMIT: u32 = 2;

async fn ours(set: StoreSet, t: TenantId, n: usize) -> anyhow::Result<u64> {
    ours_with(set, t, n, Variant::Plain).await
}

async fn ours_with(set: StoreSet, t: TenantId, n: usize, variant: Variant) -> anyhow::Result<u64> {
    let q = QueueName::new("bench")?;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            let job = NewJob::new(json!({"job": i}));
            match variant {
                Variant::Plain => job,
                Variant::Keys => job.with_concurrency_key(format!("k{}", i % KEYS)),
                Variant::Unique => job
                    .with_dedup_key(format!("u{i}"))
                    .with_unique_for(Duration::from_secs(3600)),
            }
        })
        .collect();
    let dequeue = match variant {
        Variant::Keys => {
            Dequeue::batch(DEQUEUE_BATCH, Duration::from_secs(60)).with_key_limit(KEY_LIMIT)
        }
        _ => Dequeue::batch(DEQUEUE_BATCH, Duration::from_secs(60)),
    };
    for chunk in jobs.chunks(ENQUEUE_BATCH) {
        for r in set.queue.enqueue_batch(&t, &q, chunk.to_vec()).await? {
            r?;
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (set, t, q, done) = (set.clone(), t.clone(), q.clone(), done.clone());
        let dequeue = dequeue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let got = set.queue.dequeue(&t, &q, dequeue.clone()).await?;
                if got.is_empty() {
                    return Ok::<(), anyhow::Error>(());
                }
                let leases: Vec<_> = got.into_iter().map(|j| j.lease).collect();
                for r in set.queue.ack_batch(&t, &leases).await? {
                    r?;
                }
                done.fetch_add(leases.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    all_done(tasks, &done, n, "flowstore").await
}

async fn raw(backend: Arc<Backend>, t: String, n: usize) -> anyhow::Result<u64> {
    let payloads: Vec<String> = (0..n).map(|i| json!({"job": i}).to_string()).collect();
    let now = Timestamp::now().as_micros();
    match &*backend {
        Backend::Sqlite { raw, .. } => {
            for (c, chunk) in payloads.chunks(ENQUEUE_BATCH).enumerate() {
                let mut tx = raw.begin().await?;
                for (i, p) in chunk.iter().enumerate() {
                    sqlx::query("INSERT INTO flowstore_jobs (tenant, queue, job_id, seq, payload, priority, run_at, max_attempts, backoff, state, enqueued_at) VALUES (?, 'bench', ?, ?, ?, 0, ?, 5, '{}', 'ready', ?)")
                        .bind(&t).bind(RunId::generate().as_str()).bind(i64::try_from(c * ENQUEUE_BATCH + i)?).bind(p).bind(now).bind(now)
                        .execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Backend::Postgres { raw, .. } => {
            for chunk in payloads.chunks(ENQUEUE_BATCH) {
                let ids: Vec<String> = chunk
                    .iter()
                    .map(|_| RunId::generate().as_str().to_owned())
                    .collect();
                sqlx::query("INSERT INTO flowstore_jobs (tenant, queue, job_id, payload, priority, run_at, max_attempts, backoff, state, enqueued_at) SELECT $1, 'bench', id, p::jsonb, 0, to_timestamp($2 / 1000000.0), 5, '{}', 'ready', to_timestamp($2 / 1000000.0) FROM UNNEST($3::text[], $4::text[]) AS j(id, p)")
                    .bind(&t).bind(now).bind(ids).bind(chunk.to_vec()).execute(raw).await?;
            }
        }
        Backend::Redis { raw, .. } => {
            let mut c = raw.clone();
            let p = format!("flowstore:{{{t}}}:q:bench:");
            for (ci, chunk) in payloads.chunks(ENQUEUE_BATCH).enumerate() {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (i, payload) in chunk.iter().enumerate() {
                    let id = RunId::generate();
                    let order = format!("{:048}|{id}", ci * ENQUEUE_BATCH + i);
                    pipe.cmd("HSET")
                        .arg(format!("{p}job:{id}"))
                        .arg(&["payload", payload.as_str(), "state", "ready"])
                        .ignore();
                    pipe.cmd("ZADD")
                        .arg(format!("{p}ready"))
                        .arg(0)
                        .arg(order)
                        .ignore();
                }
                let () = pipe.query_async(&mut c).await?;
            }
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (b, t, done) = (backend.clone(), t.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let exp = Timestamp::now().as_micros() + 60_000_000;
                let got = match &*b {
                    Backend::Sqlite { raw, .. } => {
                        let mut tx = raw.begin().await?;
                        let ids: Vec<String> = sqlx::query_scalar("UPDATE flowstore_jobs SET state = 'leased', lease_expires = ?, attempts = attempts + 1 WHERE tenant = ? AND queue = 'bench' AND job_id IN (SELECT job_id FROM flowstore_jobs WHERE tenant = ? AND queue = 'bench' AND state = 'ready' ORDER BY priority DESC, run_at, seq LIMIT ?) RETURNING job_id")
                            .bind(exp).bind(&t).bind(&t).bind(i64::try_from(DEQUEUE_BATCH)?).fetch_all(&mut *tx).await?;
                        tx.commit().await?;
                        if !ids.is_empty() {
                            let mut tx = raw.begin().await?;
                            for id in &ids {
                                sqlx::query("DELETE FROM flowstore_jobs WHERE tenant = ? AND queue = 'bench' AND job_id = ?").bind(&t).bind(id).execute(&mut *tx).await?;
                            }
                            tx.commit().await?;
                        }
                        ids.len()
                    }
                    Backend::Postgres { raw, .. } => {
                        let ids: Vec<String> = sqlx::query_scalar("WITH picked AS (SELECT ctid FROM flowstore_jobs WHERE tenant || '/' || queue = $1 || '/bench' AND state = 'ready' ORDER BY priority DESC, run_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED) \
                             UPDATE flowstore_jobs j SET state = 'leased', lease_expires = to_timestamp($3 / 1000000.0), attempts = j.attempts + 1 WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM picked)) RETURNING j.ctid::text")
                            .bind(&t).bind(i64::try_from(DEQUEUE_BATCH)?).bind(exp).fetch_all(raw).await?;
                        if !ids.is_empty() {
                            sqlx::query("DELETE FROM flowstore_jobs WHERE ctid = ANY($1::text[]::tid[])").bind(&ids).execute(raw).await?;
                        }
                        ids.len()
                    }
                    Backend::Redis { raw, .. } => {
                        let mut c = raw.clone();
                        let p = format!("flowstore:{{{t}}}:q:bench:");
                        let popped: Vec<(String, f64)> = redis::cmd("ZPOPMIN").arg(format!("{p}ready")).arg(DEQUEUE_BATCH).query_async(&mut c).await?;
                        if !popped.is_empty() {
                            let mut lease = redis::pipe();
                            lease.atomic();
                            for (m, _) in &popped {
                                let id = m.rsplit('|').next().unwrap_or_default();
                                lease.cmd("HSET").arg(format!("{p}job:{id}")).arg("state").arg("leased").ignore();
                                lease.cmd("ZADD").arg(format!("{p}leased")).arg(exp).arg(id).ignore();
                            }
                            let () = lease.query_async(&mut c).await?;
                            let mut ack = redis::pipe();
                            ack.atomic();
                            for (m, _) in &popped {
                                let id = m.rsplit('|').next().unwrap_or_default();
                                ack.cmd("DEL").arg(format!("{p}job:{id}")).ignore();
                                ack.cmd("ZREM").arg(format!("{p}leased")).arg(id).ignore();
                            }
                            let () = ack.query_async(&mut c).await?;
                        }
                        popped.len()
                    }
                };
                if got == 0 {
                    return Ok::<(), anyhow::Error>(());
                }
                done.fetch_add(got as u64, Ordering::Relaxed);
            }
        }));
    }
    all_done(tasks, &done, n, "the raw driver").await
}

/// Waits for the workers, then checks that together they processed all `n` jobs.
async fn all_done(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    done: &AtomicU64,
    n: usize,
    side: &str,
) -> anyhow::Result<u64> {
    for task in tasks {
        task.await??;
    }
    let processed = done.load(Ordering::Relaxed);
    anyhow::ensure!(
        processed == n as u64,
        "{side} processed {processed} of {n} jobs"
    );
    Ok(processed)
}

fn ours_side<'a>(set: &'a StoreSet, jobs: usize) -> Side<'a> {
    Box::new(move |_| {
        let set = set.clone();
        Box::pin(async move {
            ours(
                set,
                TenantId::new(format!("p3o{}", RunId::generate()))?,
                jobs,
            )
            .await
        })
    })
}

/// P3 on one backend: flowstore, the raw driver and apalis in turn, each round. Two
/// figures: flowstore against apalis (the target) and against the raw driver (how
/// close to the driver flowstore's checks, fencing and dead letters leave it).
///
/// When apalis cannot take `jobs` queued at once on this backend, the apalis figure
/// is measured at the largest size it can, ours beside it at that size, and says so.
///
/// # Errors
/// Any side fails or loses jobs.
pub async fn run(
    backend: Arc<Backend>,
    dir: &std::path::Path,
    jobs: usize,
    rounds: usize,
) -> anyhow::Result<[Figure; 2]> {
    let set = backend.set();
    let peer = Arc::new(Peer::open(&backend, dir).await?);
    let limit = peer.backlog_limit().filter(|(most, _)| *most < jobs);
    let apalis_jobs = limit.map_or(jobs, |(most, _)| most);
    let apalis_side = |n: usize| -> Side<'_> {
        let peer = peer.clone();
        Box::new(move |_| {
            let peer = peer.clone();
            Box::pin(async move { peer.round(&format!("p3a{}", RunId::generate()), n).await })
        })
    };
    let mut sides: Vec<Side<'_>> = vec![
        ours_side(&set, jobs),
        Box::new(|_| {
            let backend = backend.clone();
            Box::pin(async move { raw(backend, format!("p3r{}", RunId::generate()), jobs).await })
        }),
    ];
    if limit.is_none() {
        sides.push(apalis_side(jobs));
    }
    let rates = rotate(rounds, &mut sides).await?;
    let (ours, raw) = (rates[0], rates[1]);
    let (ours_at_apalis_size, apalis) = match limit {
        None => (ours, rates[2]),
        Some(_) => {
            let mut pair = vec![ours_side(&set, apalis_jobs), apalis_side(apalis_jobs)];
            let r = rotate(rounds, &mut pair).await?;
            (r[0], r[1])
        }
    };
    let name = "queue: enqueue (batches of 500), 4 workers dequeue 50 and ack";
    let sizes = format!("{jobs} jobs x {rounds} rounds each side");
    Ok([
        Figure {
            scenario: "P3",
            name: name.into(),
            backend: backend.name(),
            unit: "jobs/s",
            ours: ours_at_apalis_size,
            baseline: apalis,
            baseline_name: "apalis 1.0, same server, fetch batch 50, its defaults otherwise".into(),
            ratio: ours_at_apalis_size / apalis.max(1e-9),
            target: ">= 2x apalis",
            met: ours_at_apalis_size >= 2.0 * apalis,
            sizes: match limit {
                None => sizes.clone(),
                Some((most, why)) => {
                    format!("{most} jobs x {rounds} rounds each side (apalis: {why})")
                }
            },
        },
        Figure {
            scenario: "P3-raw",
            name: name.into(),
            backend: backend.name(),
            unit: "jobs/s",
            ours,
            baseline: raw,
            baseline_name: "raw driver, same tables or keys, leases without fencing".into(),
            ratio: ours / raw.max(1e-9),
            target: "report (no target set)",
            met: true,
            sizes,
        },
    ])
}

fn variant_side<'a>(set: &'a StoreSet, jobs: usize, variant: Variant) -> Side<'a> {
    Box::new(move |_| {
        let set = set.clone();
        Box::pin(async move {
            ours_with(
                set,
                TenantId::new(format!("p3v{}", RunId::generate()))?,
                jobs,
                variant,
            )
            .await
        })
    })
}

/// P3's variants (issue 15) beside plain P3, in the same rotation: jobs with 100
/// concurrency keys dequeued with a limit of 2 per key, and jobs each with a unique key
/// over an hour. Target: at least 0.7 of plain P3's rate.
///
/// # Errors
/// Any side fails or loses jobs.
pub async fn variants(
    backend: Arc<Backend>,
    jobs: usize,
    rounds: usize,
) -> anyhow::Result<[Figure; 2]> {
    let set = backend.set();
    let mut sides: Vec<Side<'_>> = vec![
        variant_side(&set, jobs, Variant::Plain),
        variant_side(&set, jobs, Variant::Keys),
        variant_side(&set, jobs, Variant::Unique),
    ];
    let rates = rotate(rounds, &mut sides).await?;
    let (plain, keys, unique) = (rates[0], rates[1], rates[2]);
    let sizes = format!("{jobs} jobs x {rounds} rounds each side");
    let figure = |scenario: &'static str, name: &str, ours: f64| Figure {
        scenario,
        name: name.into(),
        backend: backend.name(),
        unit: "jobs/s",
        ours,
        baseline: plain,
        baseline_name: "plain P3 (no keys), same run".into(),
        ratio: ours / plain.max(1e-9),
        target: ">= 0.7x plain P3",
        met: ours >= 0.7 * plain,
        sizes: sizes.clone(),
    };
    Ok([
        figure(
            "P3-keys",
            "queue with 100 concurrency keys, limit 2 per key (Q18)",
            keys,
        ),
        figure(
            "P3-unique",
            "queue with a unique key per job over an hour (Q17)",
            unique,
        ),
    ])
}
