//! O4 for operators: a store of 10,000 runs and 50 workflow versions (plus metrics,
//! patterns, jobs and documents, in two tenants) moves fs+SQLite -> PostgreSQL -> Redis
//! -> SQLite, and every record and digest at the end is identical to the source. A
//! transfer SIGKILLed halfway and run again ends identical too.
//!
//! Needs the servers `cargo xtask test` starts.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::transfer::{digest_tenant, Concerns};
use storage_ports::{
    CollectionName, CompleteRun, Dequeue, JobFailure, NewJob, NewRun, NewWorkflowVersion,
    NodeExecution, NodeStatus, PatternObservation, QueueName, Run, RunId, RunMetric, RunOutcome,
    RunStatus, RunStep, TenantId, Timestamp, VariableSnapshot, WorkflowId,
};
use storage_wiring::{transfer, Storage, StorageConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ROLE: &str = "FLOWSTORE_TRANSFER_CHILD";
const KILL_TEST: &str = "a_transfer_killed_halfway_completes_when_run_again";
const ALL: Concerns = Concerns::ALL;

async fn storage(yaml: &str) -> Result<Storage, Box<dyn std::error::Error>> {
    Ok(Storage::build(&StorageConfig::from_yaml(yaml)?).await?)
}

fn embedded(dir: &std::path::Path, db: &str) -> String {
    format!(
        "workflows: {{ type: fs, path: {d} }}\nruns: {{ type: sqlite, path: {d}/{db} }}\nmetrics: {{ type: sqlite, path: {d}/{db} }}\nqueue: {{ type: sqlite, path: {d}/{db} }}\ndocuments: {{ type: sqlite, path: {d}/{db} }}\ncredentials: {{ type: memory }}\n",
        d = dir.display()
    )
}

fn server(kind: &str, url: &str) -> String {
    ["workflows", "runs", "metrics", "queue", "documents"]
        .iter()
        .map(|c| format!("{c}: {{ type: {kind}, url: \"{url}\" }}\n"))
        .collect::<String>()
        + "credentials: { type: memory }\n"
}

fn run(i: u64, t0: i64) -> Result<CompleteRun, storage_ports::Error> {
    let at = Timestamp::from_micros(t0 + i64::try_from(i).unwrap_or(0) * 1_000);
    let mut run = Run::started(NewRun {
        run_id: RunId::new(format!("run-{i:05}"))?,
        workflow_id: WorkflowId::new(format!("wf-{}", i % 10))?,
        version: 1 + u32::try_from(i % 5).unwrap_or(0),
        inputs: json!({"i": i, "note": "héllo"}),
        started_at: at,
    });
    run.apply(if i.is_multiple_of(7) {
        RunOutcome {
            status: RunStatus::Cancelled,
            ended_at: at,
            output: None,
            error: None,
        }
    } else {
        RunOutcome::succeeded(json!({"sum": i * 2}), at)
    });
    let steps = vec![
        RunStep::Node(NodeExecution {
            node_id: storage_ports::NodeId::new("fetch")?,
            node_type: "http".into(),
            status: NodeStatus::Succeeded,
            inputs: json!({"url": format!("https://x/{i}")}),
            outputs: json!({"bytes": i}),
            error: None,
            retries: 0,
            started_at: at,
            ended_at: Some(at),
        }),
        RunStep::Snapshot(VariableSnapshot {
            name: "total".into(),
            old_value: json!(null),
            new_value: json!(i),
            at,
        }),
    ];
    Ok(CompleteRun { run, steps })
}

/// Two tenants: a big one and a small one.
async fn seed(s: &Storage, big: &TenantId, small: &TenantId) -> TestResult {
    let t0 = Timestamp::now().as_micros() - 86_400_000_000;
    for (t, runs) in [(big, 10_000_u64), (small, 30)] {
        let v = s.tenant(t.clone());
        for w in 0..10 {
            let id = WorkflowId::new(format!("wf-{w}"))?;
            for n in 1..=5_u32 {
                let mut new = NewWorkflowVersion::next(id.clone(), json!({"w": w, "n": n}));
                new.parent = (n > 1).then_some(n - 1);
                v.put_workflow(new).await?;
            }
        }
        let all: Vec<CompleteRun> = (0..runs).map(|i| run(i, t0)).collect::<Result<_, _>>()?;
        for chunk in all.chunks(500) {
            for r in v.store_runs(chunk.to_vec()).await? {
                r?;
            }
        }
        for i in 0..300.min(runs) {
            v.record_metric(RunMetric {
                run_id: RunId::new(format!("run-{i:05}"))?,
                workflow_id: WorkflowId::new(format!("wf-{}", i % 10))?,
                version: 1,
                status: RunStatus::Succeeded,
                duration_ms: 10.0 + i as f64,
                finished_at: Timestamp::from_micros(t0 + i64::try_from(i)? * 1_000),
                values: [(storage_ports::MetricName::new("tokens")?, i as f64)].into(),
            })
            .await?;
        }
        for k in 0..5 {
            v.upsert_pattern(PatternObservation {
                workflow_id: WorkflowId::new("wf-1")?,
                kind: "slow_node".into(),
                key: format!("node-{k}"),
                description: format!("node {k} is slow"),
                confidence: 0.5,
                data: json!({"k": k}),
                seen_at: Timestamp::now(),
            })
            .await?;
        }
        let q = QueueName::new("work")?;
        let jobs: Vec<NewJob> = (0..100)
            .map(|j| {
                let job = NewJob::new(json!({"job": j})).with_priority(j % 3);
                if j % 4 == 0 {
                    job.with_run_at(Timestamp::now().plus(Duration::from_secs(3600)))
                } else {
                    job
                }
            })
            .collect();
        for r in v.enqueue_batch(&q, jobs).await? {
            r?;
        }
        // Dead letters travel too.
        for leased in v
            .dequeue(&q, Dequeue::batch(5, Duration::from_secs(60)))
            .await?
        {
            v.fail(
                &leased.lease,
                JobFailure {
                    error: "gave up".into(),
                    retry: false,
                },
            )
            .await?;
        }
        for d in 0..100 {
            let c = CollectionName::new(if d % 2 == 0 { "customers" } else { "notes" })?;
            v.create_document(
                &c,
                Some(storage_ports::DocumentId::new(format!("doc-{d}"))?),
                json!({"d": d}),
            )
            .await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_sqlite_to_postgres_to_redis_to_sqlite_is_identical() -> TestResult {
    let (pg, redis) = (
        server_env("FLOWSTORE_TEST_POSTGRES_URL")?,
        server_env("FLOWSTORE_TEST_REDIS_URL")?,
    );
    let dir = std::env::temp_dir().join(format!("flowstore-transfer-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let (big, small) = (fresh_tenant()?, fresh_tenant()?);
    // Stores sit side by side, never inside the source's root, whose directories
    // are its tenants.
    let source = storage(&embedded(&dir.join("source"), "source.db")).await?;
    seed(&source, &big, &small).await?;
    let want = [
        digest_tenant(source.ports(), &big, ALL).await?,
        digest_tenant(source.ports(), &small, ALL).await?,
    ];
    assert_eq!(want[0]["runs"].count, 10_000);
    assert_eq!(want[0]["workflows"].count, 50);
    assert_eq!(want[0]["jobs"].count, 100, "95 pending and 5 dead jobs");

    let pg_store = storage(&server("postgres", &pg)).await?;
    let redis_store = storage(&server("redis", &redis)).await?;
    let back = storage(&embedded(&dir.join("back"), "back.db")).await?;
    let both = Some(vec![big.clone(), small.clone()]);
    let started = std::time::Instant::now();
    // The source lists its own tenants (files and SQLite can); Redis cannot, so the
    // next hops name them.
    let hop1 = transfer(&source, &pg_store, None, &mut |_, _, _| {}).await?;
    assert_eq!(
        hop1.tenants.len(),
        2,
        "the source's tenants: {:?}",
        hop1.tenants.iter().map(|t| &t.tenant).collect::<Vec<_>>()
    );
    let t1 = started.elapsed();
    transfer(&pg_store, &redis_store, both.clone(), &mut |_, _, _| {}).await?;
    let t2 = started.elapsed();
    let hop3 = transfer(&redis_store, &back, both, &mut |_, _, _| {}).await?;
    let t3 = started.elapsed();
    eprintln!(
        "fs+sqlite -> postgres {:.1}s, -> redis {:.1}s, -> sqlite {:.1}s",
        t1.as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64()
    );
    for (i, t) in [&big, &small].into_iter().enumerate() {
        let got = digest_tenant(back.ports(), t, ALL).await?;
        assert_eq!(
            got, want[i],
            "tenant {t} differs from the source after three hops"
        );
    }
    // Record by record, too: a sample of runs reads back equal.
    for i in [0_u64, 1, 4_999, 9_999] {
        let id = RunId::new(format!("run-{i:05}"))?;
        assert_eq!(
            back.tenant(big.clone()).complete_run(&id).await?,
            source.tenant(big.clone()).complete_run(&id).await?
        );
    }
    assert!(hop3.skipped.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The child role of the kill test: transfer the seeded source to a fresh SQLite file,
/// printing progress, until killed.
async fn child(dir: &std::path::Path) -> TestResult {
    let source = storage(&embedded(&dir.join("source"), "source.db")).await?;
    let dest = storage(&embedded(&dir.join("dest"), "dest.db")).await?;
    transfer(&source, &dest, None, &mut |_, concern, n| {
        println!("progress {concern} {n}");
    })
    .await?;
    println!("finished");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_killed_halfway_completes_when_run_again() -> TestResult {
    if let Ok(dir) = std::env::var(ROLE) {
        return child(std::path::Path::new(&dir)).await;
    }
    let dir = std::env::temp_dir().join(format!("flowstore-transfer-kill-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let (big, small) = (TenantId::new("big")?, TenantId::new("small")?);
    let source = storage(&embedded(&dir.join("source"), "source.db")).await?;
    seed(&source, &big, &small).await?;
    let mut proc = Command::new(std::env::current_exe()?)
        .args(["--exact", KILL_TEST, "--nocapture", "--test-threads", "1"])
        .env(ROLE, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = proc.stdout.take().ok_or("no stdout")?;
    let mut killed_at = None;
    for line in std::io::BufReader::new(out).lines() {
        let line = line?;
        if let Some(n) = line
            .strip_prefix("progress runs ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            if n >= 4_000 {
                proc.kill()?;
                killed_at = Some(n);
                break;
            }
        }
        assert_ne!(
            line, "finished",
            "the child finished before it could be killed"
        );
    }
    proc.wait()?;
    let killed_at = killed_at.ok_or("the child never reached 4,000 runs")?;
    let dest = storage(&embedded(&dir.join("dest"), "dest.db")).await?;
    let report = transfer(&source, &dest, None, &mut |_, _, _| {}).await?;
    assert_eq!(report.tenants.len(), 2);
    let big_report = report
        .tenants
        .iter()
        .find(|t| t.tenant == big)
        .ok_or("big tenant missing")?;
    let present = big_report
        .copied
        .already_present
        .get("runs")
        .copied()
        .unwrap_or(0);
    assert!(
        present >= killed_at.saturating_sub(200),
        "the rerun found only {present} runs of the {killed_at} copied before the kill"
    );
    for t in [&big, &small] {
        assert_eq!(
            digest_tenant(dest.ports(), t, ALL).await?,
            digest_tenant(source.ports(), t, ALL).await?
        );
    }
    eprintln!(
        "killed after {killed_at} runs; the rerun found {present} present and completed the copy"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
