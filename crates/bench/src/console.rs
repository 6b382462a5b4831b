//! P-console: the web console's pages and API answers, p95 over HTTP on loopback, on
//! a tenant holding a large number of runs (1,000,000 in a full run), beside the same
//! requests on a tenant of the same store holding a small number. The target is the
//! issue's: every route answers in under 100 ms at the 95th percentile at the large
//! size. The ratio says how the route scales (an index keeps it near 1).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use storage_ports::{
    CompleteRun, JobQueueExt as _, MetricName, NewJob, NewRun, NewWorkflowVersion, NodeExecution,
    NodeId, NodeStatus, QueueName, Run, RunId, RunMetric, RunOutcome, RunStatus, RunStep, StoreSet,
    TenantId, Timestamp, VariableSnapshot, WorkflowId,
};

use crate::backends::Backend;
use crate::measure::{latencies, quantile, Figure};

const SAMPLES: usize = 60;
const TARGET_MS: f64 = 100.0;

/// The routes measured, `{run}` and `{cursor}` filled in per tenant.
const ROUTES: [&str; 12] = [
    "/",
    "/runs",
    "/runs?workflow=wf-3&status=failed",
    "/runs?cursor={cursor}",
    "/runs/{run}",
    "/workflows",
    "/workflows/wf-3/diff?a=1&b=2",
    "/queues/console",
    "/metrics/wf-3?name=tokens&hours=24",
    "/api/overview",
    "/api/runs",
    "/api/runs/{run}",
];

/// A tenant seeded for the console: `runs` runs, one of them with a full log, three
/// workflow versions, a queue and recorded metrics.
async fn seed(set: &StoreSet, t: &TenantId, runs: usize) -> anyhow::Result<RunId> {
    crate::query::seed(set, t, runs).await?;
    let wf = WorkflowId::new("wf-3")?;
    for v in 1..=3_u32 {
        let def = json!({"nodes": ["fetch", "transform", "store"], "revision": v});
        let mut new = NewWorkflowVersion::next(wf.clone(), def).with_version(v);
        new.parent = (v > 1).then(|| v - 1);
        set.workflows.put(t, new).await?;
    }
    let id = RunId::generate();
    let started = Timestamp::now();
    let mut run = Run::started(NewRun {
        run_id: id.clone(),
        workflow_id: wf.clone(),
        version: 3,
        inputs: json!({"order": 1}),
        started_at: started,
    });
    let mut steps = Vec::new();
    for n in 0..20_i64 {
        let at = Timestamp::from_micros(started.as_micros() + n * 1_000);
        steps.push(RunStep::Node(NodeExecution {
            node_id: NodeId::new(format!("node-{n}"))?,
            node_type: "http".into(),
            status: NodeStatus::Succeeded,
            inputs: json!({"n": n}),
            outputs: json!({"ok": true}),
            error: None,
            retries: 0,
            started_at: at,
            ended_at: Some(Timestamp::from_micros(at.as_micros() + 800)),
        }));
        steps.push(RunStep::Snapshot(VariableSnapshot {
            name: format!("v{n}"),
            old_value: json!(n),
            new_value: json!(n + 1),
            at,
        }));
    }
    run.apply(RunOutcome::succeeded(json!(1), Timestamp::now()));
    set.runs
        .store_complete(t, CompleteRun { run, steps })
        .await?;
    let q = QueueName::new("console")?;
    for i in 0..200 {
        let job =
            NewJob::new(json!(i)).with_delay(Duration::from_secs(if i % 2 == 0 { 0 } else { 600 }));
        set.queue.enqueue(t, &q, job).await?;
    }
    for i in 0..2_000_u32 {
        set.metrics
            .record(
                t,
                RunMetric {
                    run_id: RunId::generate(),
                    workflow_id: wf.clone(),
                    version: 3,
                    status: if i % 10 == 0 {
                        RunStatus::Failed
                    } else {
                        RunStatus::Succeeded
                    },
                    duration_ms: 10.0 + f64::from(i % 300),
                    finished_at: Timestamp::now(),
                    values: [(MetricName::new("tokens")?, f64::from(i % 97))].into(),
                },
            )
            .await?;
    }
    Ok(id)
}

/// One GET to the console; fails on any status but 200.
async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let res = http.get(url).send().await?;
    let status = res.status();
    let body = res.text().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status}: {body}");
    Ok(body)
}

/// Each route's p95 (ms) on one seeded tenant.
async fn p95s(base: &str, t: &TenantId, run: &RunId) -> anyhow::Result<Vec<f64>> {
    let http = reqwest::Client::new();
    let first: serde_json::Value = serde_json::from_str(
        &fetch(&http, &format!("{base}/api/runs?tenant={}", t.as_str())).await?,
    )?;
    let cursor = first["next"].as_str().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for route in ROUTES {
        let path = route
            .replace("{run}", run.as_str())
            .replace("{cursor}", &flowstore_console::html::url(&cursor));
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{base}{path}{sep}tenant={}", t.as_str());
        fetch(&http, &url).await?;
        let lat = latencies(SAMPLES, || {
            let (http, url) = (http.clone(), url.clone());
            async move { fetch(&http, &url).await.map(drop) }
        })
        .await?;
        out.push(quantile(&lat, 0.95));
    }
    Ok(out)
}

/// P-console on one backend: a figure per route.
pub async fn run(b: Arc<Backend>, small: usize, big: usize) -> anyhow::Result<Vec<Figure>> {
    let set = b.set();
    let tag = RunId::generate();
    let (ts, tb) = (
        TenantId::new(format!("pcs{tag}"))?,
        TenantId::new(format!("pcb{tag}"))?,
    );
    let run_small = seed(&set, &ts, small).await?;
    let seeding = std::time::Instant::now();
    let run_big = seed(&set, &tb, big).await?;
    eprintln!(
        "P-console {}: seeded {big} runs in {:.0} s",
        b.name(),
        seeding.elapsed().as_secs_f64()
    );
    // What the overview's snapshot saves: one count of the large tenant.
    let counting = latencies(5, || {
        let (set, t) = (set.clone(), tb.clone());
        async move { set.operations.stats(&t).await.map(drop).map_err(Into::into) }
    })
    .await?;
    let counting = quantile(&counting, 0.5);
    let storage = storage_wiring::Storage::from_set(set);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let console =
        flowstore_console::Console::new(storage, flowstore_console::ConsoleOptions::default());
    let server = tokio::spawn(console.serve(listener));
    let s = p95s(&base, &ts, &run_small).await?;
    let l = p95s(&base, &tb, &run_big).await?;
    server.abort();
    Ok(ROUTES
        .iter()
        .zip(l.iter().zip(&s))
        .map(|(route, (&large, &small_p95))| Figure {
            scenario: "P-console",
            name: if route.ends_with("overview") || *route == "/" {
                format!("GET {route} p95 at {big} runs (counts from a snapshot at most 10 s old; one count takes {counting:.0} ms)")
            } else {
                format!("GET {route} p95 at {big} runs")
            },
            backend: b.name(),
            unit: "p95 ms",
            ours: large,
            baseline: small_p95,
            baseline_name: format!("the same route at {small} runs"),
            ratio: large / small_p95.max(1e-9),
            target: "p95 < 100 ms at the large size",
            met: large < TARGET_MS,
            sizes: format!(
                "{big} and {small} runs in two tenants of one store, {SAMPLES} requests per route"
            ),
        })
        .collect())
}
