//! R2, the chaos run: 100,000 jobs, worker processes killed with SIGKILL at random
//! (at least 20 kills), and one server restart in the middle. Every worker records
//! each side effect with the job's id and fencing token before it acknowledges.
//!
//! Passes when every job was acknowledged exactly once (the queue ends empty and no
//! job has two acknowledged tokens), none was lost (every job has a side effect and
//! nothing is left or dead), and none was processed twice while a lease was live: a
//! job's later lease never began before its earlier lease ended, both by the backend's
//! clock.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use storage_contract::servers::fresh_tenant;
use storage_ports::QueueName;
use tokio::process::{Child, Command};

/// Jobs per run.
const JOBS: usize = 100_000;
/// Kills at least.
const KILLS: usize = 20;

/// What one chaos run found.
#[derive(Debug)]
struct Report {
    backend: String,
    jobs: usize,
    workers: usize,
    kills: usize,
    restarts: usize,
    effects: usize,
    redeliveries: usize,
    duplicates_inside_a_lease: usize,
    acked_twice: usize,
    lost: usize,
    torn_lines: usize,
    seconds: f64,
}

/// Runs the chaos test on each backend named.
///
/// # Errors
/// A check that failed (with the report), or a backend that could not be used.
pub async fn run(backends: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for name in backends {
        let report = one(name).await?;
        println!(
            "{}",
            json!({
                "chaos": report.backend, "jobs": report.jobs, "workers": report.workers,
                "kills": report.kills, "server_restarts": report.restarts,
                "side_effects": report.effects, "redeliveries": report.redeliveries,
                "duplicates_inside_a_lease": report.duplicates_inside_a_lease,
                "acked_twice": report.acked_twice, "lost": report.lost,
                "torn_lines": report.torn_lines, "seconds": (report.seconds * 10.0).round() / 10.0,
            })
        );
        if report.duplicates_inside_a_lease > 0
            || report.acked_twice > 0
            || report.lost > 0
            || report.kills < KILLS
        {
            failed.push(report);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("chaos checks failed: {failed:#?}");
    }
    Ok(())
}

fn spawn_worker(
    exe: &Path,
    backend: &str,
    tenant: &str,
    dir: &Path,
    n: usize,
) -> anyhow::Result<Child> {
    Command::new(exe)
        .arg("worker")
        .arg(backend)
        .arg(tenant)
        .arg("chaos")
        .arg(dir.join(format!("effects-{n}.log")))
        .arg(dir.join("chaos.db"))
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker")
}

async fn one(backend: &str) -> anyhow::Result<Report> {
    let started = Instant::now();
    let dir =
        std::env::temp_dir().join(format!("flowstore-chaos-{backend}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = crate::backend::open(backend, &dir.join("chaos.db")).await?;
    let workers = if backend == "sqlite" { 4 } else { 8 };
    let tenant = fresh_tenant()?;
    let q = QueueName::new("chaos")?;
    crate::backend::enqueue_all(&*store, &tenant, &q, JOBS, None).await?;
    let exe = std::env::current_exe()?;
    let mut spawned = 0;
    let mut pool: Vec<Child> = Vec::new();
    for _ in 0..workers {
        pool.push(spawn_worker(&exe, backend, tenant.as_str(), &dir, spawned)?);
        spawned += 1;
    }
    let (mut kills, mut restarts) = (0, 0);
    let mut seed: u64 = u64::from(std::process::id()) | 1;
    let mut random = move |n: usize| {
        // xorshift: enough to pick victims and pauses.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % (n as u64)).unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        tokio::time::sleep(Duration::from_millis(50 + random(200) as u64)).await;
        let stats = storage_ports::JobQueue::stats(&*store, &tenant, &q).await;
        let left = stats
            .as_ref()
            .map_or(u64::MAX, |s| s.pending + s.scheduled + s.running);
        if left == 0 || Instant::now() > deadline {
            break;
        }
        if kills < KILLS * 2 && (left > 2_000 || kills < KILLS) {
            let victim = random(pool.len());
            let _ = pool[victim].start_kill();
            let _ = pool[victim].wait().await;
            pool[victim] = spawn_worker(&exe, backend, tenant.as_str(), &dir, spawned)?;
            spawned += 1;
            kills += 1;
        }
        if kills == KILLS / 2 && restarts == 0 {
            if let Some(script) = crate::backend::restart_script(backend) {
                let status = Command::new("sh").arg(&script).status().await?;
                anyhow::ensure!(status.success(), "the restart script {script} failed");
                restarts += 1;
            }
        }
    }
    for mut w in pool {
        let _ = tokio::time::timeout(Duration::from_secs(30), w.wait()).await;
        let _ = w.start_kill();
    }
    let left = storage_ports::JobQueue::stats(&*store, &tenant, &q).await?;
    let dead = store.dead(&tenant, &q, 1000).await?.len();
    let mut report = check(&dir, spawned)?;
    report.backend = backend.to_owned();
    report.jobs = JOBS;
    report.workers = workers;
    report.kills = kills;
    report.restarts = restarts;
    let unfinished = usize::try_from(left.pending + left.scheduled + left.running + left.dead)
        .unwrap_or(usize::MAX);
    report.lost = report.lost.max(unfinished).max(dead);
    report.seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Reads every worker's file and checks the side effects.
fn check(dir: &Path, files: usize) -> anyhow::Result<Report> {
    // job -> [(token, lease began, lease ends)]
    let mut effects: HashMap<String, Vec<(u64, i64, i64)>> = HashMap::new();
    let mut acked: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut torn = 0;
    let mut count = 0;
    for n in 0..files {
        let path: PathBuf = dir.join(format!("effects-{n}.log"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["effect", job, token, began, ends] => {
                    match (token.parse(), began.parse(), ends.parse()) {
                        (Ok(t), Ok(b), Ok(e)) => {
                            effects
                                .entry((*job).to_owned())
                                .or_default()
                                .push((t, b, e));
                            count += 1;
                        }
                        _ => torn += 1,
                    }
                }
                ["acked", job, token] => match token.parse() {
                    Ok(t) => {
                        acked.entry((*job).to_owned()).or_default().insert(t);
                    }
                    Err(_) => torn += 1,
                },
                _ => torn += 1,
            }
        }
    }
    let mut duplicates = 0;
    for leases in effects.values_mut() {
        leases.sort_unstable();
        leases.dedup_by_key(|l| l.0);
        for pair in leases.windows(2) {
            // The later lease began before the earlier one ended: two live holders.
            if pair[1].1 < pair[0].2 {
                duplicates += 1;
            }
        }
    }
    let redeliveries = effects.values().map(|l| l.len().saturating_sub(1)).sum();
    Ok(Report {
        backend: String::new(),
        jobs: 0,
        workers: 0,
        kills: 0,
        restarts: 0,
        effects: count,
        redeliveries,
        duplicates_inside_a_lease: duplicates,
        acked_twice: acked.values().filter(|t| t.len() > 1).count(),
        lost: JOBS.saturating_sub(effects.len()),
        torn_lines: torn,
        seconds: 0.0,
    })
}
