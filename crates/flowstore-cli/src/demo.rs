//! `flowstore demo`: a small workflow engine on the configured storage.

use std::time::{Duration, Instant};

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use storage_ports::{
    Dequeue, JobFailure, NewJob, NewRun, NewWorkflowVersion, NodeExecution, NodeId, NodeStatus,
    PatternObservation, QueueName, RunError, RunId, RunMetric, RunOutcome, RunStatus, RunStep,
    TenantId, Timestamp, VariableSnapshot, WorkflowId,
};
use storage_wiring::{Storage, TenantView};

use crate::cli::DemoArgs;
use crate::commands::{Ctx, Failure, Out};

/// The tenant the demo writes to unless `--tenant` names another: its own, so that a
/// demo never mixes with what a host stored under `default`.
const DEMO_TENANT: &str = "demo";

/// Runs the demo and prints its report, then the commands that show what it stored.
///
/// # Errors
/// Any storage error, with what the demo was doing.
pub async fn run(storage: &Storage, ctx: &Ctx, opts: &DemoArgs) -> Out {
    let tenant = ctx.tenant_or(DEMO_TENANT)?;
    engine(storage, &tenant, opts)
        .await
        .map_err(|e| Failure::Other(format!("{e:#}")))
}

async fn engine(storage: &Storage, tenant: &TenantId, opts: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let view = storage.tenant(tenant.clone());
    let wf = WorkflowId::new("order-pipeline")?;
    let queue = QueueName::new("runs")?;

    for (i, parent) in [(1, None), (2, Some(1)), (3, Some(2))] {
        let mut new = NewWorkflowVersion::next(
            wf.clone(),
            json!({"nodes": ["fetch", "transform", "store"], "revision": i}),
        )
        .with_author("demo")
        .with_version(i);
        new.parent = parent;
        view.put_workflow(new)
            .await
            .context("storing the sample workflow")?;
    }
    let jobs = (0..opts.runs)
        .map(|i| {
            NewJob::new(json!({"order": i}))
                .with_max_attempts(3)
                .with_backoff(storage_ports::Backoff {
                    base_ms: 10,
                    cap_ms: 50,
                })
        })
        .collect();
    for r in view
        .enqueue_batch(&queue, jobs)
        .await
        .context("enqueueing runs")?
    {
        r.context("enqueueing a run")?;
    }

    let done = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(show_progress(done.clone(), u64::from(opts.runs)));
    let mut workers = Vec::new();
    for w in 0..opts.workers {
        let (view, wf, queue, done) = (view.clone(), wf.clone(), queue.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            worker(w, &view, &wf, &queue, &done).await
        }));
    }
    let mut retries = 0;
    for w in workers {
        retries += w.await.context("a worker panicked")??;
    }
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    view.upsert_pattern(PatternObservation {
        workflow_id: wf.clone(),
        kind: "flaky_node".into(),
        key: "fetch".into(),
        description: "fetch fails about one run in ten".into(),
        data: json!({"failure_rate": 0.1}),
        confidence: 0.8,
        seen_at: Timestamp::now(),
    })
    .await?;

    let summary = view.metric_summary(&wf, None).await?;
    let stats = view.queue_stats(&queue).await?;
    let counts = view.stats().await?;
    let d = summary.duration_ms;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flowstore demo on {}, tenant {tenant}",
        storage.capabilities().backend
    );
    let _ = writeln!(
        out,
        "  workflow     {wf}: {} versions, lineage 3 -> 2 -> 1",
        counts.workflow_versions
    );
    let _ = writeln!(
        out,
        "  runs         {} ({} succeeded, {} failed), success rate {:.1}%",
        summary.runs,
        summary.succeeded,
        summary.failed,
        summary.success_rate * 100.0
    );
    let _ = writeln!(
        out,
        "  duration     p50 {:.1} ms, p95 {:.1} ms (sketch, within 1%)",
        d.map_or(0.0, |d| d.p50),
        d.map_or(0.0, |d| d.p95)
    );
    let _ = writeln!(
        out,
        "  events       {} stored, {} job retries",
        counts.run_events, retries
    );
    let _ = writeln!(
        out,
        "  queue        pending {}, scheduled {}, running {}, dead {}",
        stats.pending, stats.scheduled, stats.running, stats.dead
    );
    let _ = writeln!(out, "  patterns     {}", counts.patterns);
    for (concern, kind) in storage.backends() {
        let _ = writeln!(out, "  {:<12} {}", concern.key(), kind.as_str());
    }
    let _ = writeln!(out, "  took         {:.2?}", started.elapsed());
    if let Err(e) = view.credential_keys().await {
        if e.kind() == storage_ports::ErrorKind::Unavailable {
            // One plain line, on standard error: the report above is complete without
            // credentials, and `doctor` explains how to enable a keyring.
            eprintln!(
                "note: no OS keyring answers here, so credentials are unavailable (the demo stores none); `flowstore doctor` says how to enable one"
            );
        }
    }
    let _ = writeln!(out, "\nto look at what it stored:");
    for command in look_commands(tenant, &wf) {
        let _ = writeln!(out, "  {command}");
    }
    // A closed stdout (e.g. piped into `head`) is not an error of the demo.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    Ok(())
}

/// Processes jobs until the queue stays empty; returns how many retries it caused.
async fn worker(
    w: u32,
    view: &TenantView,
    wf: &WorkflowId,
    queue: &QueueName,
    done: &AtomicU64,
) -> anyhow::Result<u32> {
    let mut retries = 0;
    loop {
        let jobs = view
            .dequeue(queue, Dequeue::batch(8, Duration::from_secs(30)))
            .await?;
        if jobs.is_empty() {
            if !view
                .wait_for_work(queue, Duration::from_millis(200))
                .await?
            {
                return Ok(retries);
            }
            continue;
        }
        for job in jobs {
            let order = job
                .payload
                .get("order")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            // One job in 7 fails on its first attempt, and is retried.
            if order % 7 == 3 && job.attempt == 1 {
                view.fail(
                    &job.lease,
                    JobFailure {
                        error: "upstream timeout".into(),
                        retry: true,
                    },
                )
                .await?;
                retries += 1;
                continue;
            }
            execute(w, view, wf, order).await?;
            done.fetch_add(1, Ordering::Relaxed);
            view.ack(&job.lease).await?;
        }
    }
}

async fn execute(w: u32, view: &TenantView, wf: &WorkflowId, order: u64) -> anyhow::Result<()> {
    let t0 = Timestamp::now();
    let run_id = RunId::generate();
    view.start_run(NewRun {
        run_id: run_id.clone(),
        workflow_id: wf.clone(),
        version: 3,
        inputs: json!({"order": order, "worker": w}),
        started_at: t0,
    })
    .await?;
    let fail = order % 10 == 5;
    for (i, node) in ["fetch", "transform", "store"].iter().enumerate() {
        let failed = fail && i == 0;
        let at = Timestamp::now();
        view.append_step(
            &run_id,
            RunStep::Node(NodeExecution {
                node_id: NodeId::new(*node)?,
                node_type: "task".into(),
                status: if failed {
                    NodeStatus::Failed
                } else {
                    NodeStatus::Succeeded
                },
                inputs: json!({"order": order}),
                outputs: json!({"ok": !failed}),
                error: failed.then(|| "connection reset".to_owned()),
                retries: 0,
                started_at: at,
                ended_at: Some(Timestamp::now()),
            }),
        )
        .await?;
        if failed {
            break;
        }
        view.append_step(
            &run_id,
            RunStep::Snapshot(VariableSnapshot {
                name: "stage".into(),
                old_value: json!(i),
                new_value: json!(i + 1),
                at: Timestamp::now(),
            }),
        )
        .await?;
    }
    let end = Timestamp::now();
    let outcome = if fail {
        RunOutcome::failed(
            RunError {
                kind: "io".into(),
                message: "fetch failed".into(),
                node_id: NodeId::new("fetch").ok(),
                context: json!({"order": order}),
            },
            end,
        )
    } else {
        RunOutcome::succeeded(json!({"stored": order}), end)
    };
    view.finish_run(&run_id, outcome).await?;
    #[allow(clippy::cast_precision_loss)]
    let duration_ms = end.since(t0).as_micros() as f64 / 1000.0;
    view.record_metric(RunMetric {
        run_id,
        workflow_id: wf.clone(),
        version: 3,
        status: if fail {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        },
        duration_ms,
        finished_at: end,
        values: [(
            storage_ports::MetricName::new("tokens")?,
            (order % 50) as f64,
        )]
        .into_iter()
        .collect(),
    })
    .await?;
    Ok(())
}

/// A progress bar with the rate on standard error, redrawn every 100 ms, when standard
/// error is a terminal (never in logs or pipes).
async fn show_progress(done: Arc<AtomicU64>, total: u64) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = done.load(Ordering::Relaxed).min(total);
        let width = 30;
        let filled = usize::try_from(n * width / total.max(1)).unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r  [{}{}] {n}/{total} runs, {rate:.0} runs/s",
            "#".repeat(filled),
            "-".repeat(30 - filled)
        );
    }
}

/// The commands the demo prints at its end, exactly as a person would type them (the
/// CLI test runs each one).
pub fn look_commands(tenant: &TenantId, wf: &WorkflowId) -> Vec<String> {
    let t = format!("--tenant {tenant}");
    vec![
        format!("flowstore {t} workflow lineage {wf}"),
        format!("flowstore {t} workflow diff {wf} 1 3"),
        format!("flowstore {t} runs query --workflow {wf} --status failed --limit 5"),
        format!("flowstore {t} metrics summary {wf}"),
        format!("flowstore {t} queue stats runs"),
        format!("flowstore {t} stats"),
    ]
}
