//! P2, query scaling: `query(workflow, status = failed, last 24 h, limit 50)` p50 and p99
//! with a small and a large number of stored runs in the tenant. The figure is the
//! ratio of the p99s (an index keeps it near 1); flowstore's p99 is shown beside the raw
//! driver running the same SQL on the same data.

use std::sync::Arc;

use serde_json::json;
use storage_ports::{
    CompleteRun, NewRun, Run, RunError, RunId, RunOutcome, RunQuery, RunStatus, StoreSet, TenantId,
    Timestamp, WorkflowId,
};

use crate::backends::Backend;
use crate::measure::{latencies, quantile, Figure};

const SAMPLES: usize = 200;

pub(crate) async fn seed(set: &StoreSet, t: &TenantId, n: usize) -> anyhow::Result<()> {
    let now = Timestamp::now().as_micros();
    let span = 48 * 3_600_000_000_i64;
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..n {
        let i64i = i64::try_from(i)?;
        let at = Timestamp::from_micros(now - (i64i * 7_919 % span));
        let mut run = Run::started(NewRun {
            run_id: RunId::generate(),
            workflow_id: WorkflowId::new(format!("wf-{}", i % 10))?,
            version: 1,
            inputs: json!({"i": i}),
            started_at: at,
        });
        run.apply(if i % 10 == 3 {
            RunOutcome::failed(
                RunError {
                    kind: "timeout".into(),
                    message: "slow".into(),
                    node_id: None,
                    context: json!({}),
                },
                at,
            )
        } else {
            RunOutcome::succeeded(json!(1), at)
        });
        batch.push(CompleteRun {
            run,
            steps: Vec::new(),
        });
        if batch.len() == 1_000 || i + 1 == n {
            for r in set
                .runs
                .store_complete_batch(t, std::mem::take(&mut batch))
                .await?
            {
                r?;
            }
        }
    }
    Ok(())
}

fn query() -> anyhow::Result<RunQuery> {
    Ok(RunQuery {
        workflow_id: Some(WorkflowId::new("wf-3")?),
        statuses: vec![RunStatus::Failed],
        started_from: Some(Timestamp::from_micros(
            Timestamp::now().as_micros() - 24 * 3_600_000_000,
        )),
        limit: 50,
        ..RunQuery::default()
    })
}

async fn raw_query(b: &Backend, t: &str) -> anyhow::Result<()> {
    let from = Timestamp::now().as_micros() - 24 * 3_600_000_000;
    let n = match b {
        Backend::Sqlite { raw, .. } => sqlx::query("SELECT run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error FROM flowstore_runs WHERE tenant = ? AND workflow_id = 'wf-3' AND status = 'failed' AND started_at >= ? ORDER BY started_at DESC, run_id DESC LIMIT 51")
            .bind(t).bind(from).fetch_all(raw).await?.len(),
        Backend::Postgres { raw, .. } => sqlx::query("SELECT run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error FROM flowstore_runs WHERE tenant = $1 AND workflow_id = 'wf-3' AND status = 'failed' AND started_at >= $2 ORDER BY started_at DESC, run_id DESC LIMIT 51")
            .bind(t).bind(from).fetch_all(raw).await?.len(),
        Backend::Redis { .. } => 0,
    };
    anyhow::ensure!(n > 0, "the raw query found nothing");
    Ok(())
}

/// p50 and p99 (ms) of flowstore's and the raw query on `n` stored runs.
async fn at_size(b: &Arc<Backend>, n: usize) -> anyhow::Result<[f64; 4]> {
    let set = b.set();
    let t = TenantId::new(format!("p2{}", RunId::generate()))?;
    seed(&set, &t, n).await?;
    let q = query()?;
    let ours = latencies(SAMPLES, || {
        let (set, t, q) = (set.clone(), t.clone(), q.clone());
        async move {
            let page = set.runs.query(&t, q).await?;
            anyhow::ensure!(!page.items.is_empty(), "the query found nothing");
            Ok(())
        }
    })
    .await?;
    let raw = latencies(SAMPLES, || {
        let (b, t) = (b.clone(), t.to_string());
        async move { raw_query(&b, &t).await }
    })
    .await?;
    Ok([
        quantile(&ours, 0.5),
        quantile(&ours, 0.99),
        quantile(&raw, 0.5),
        quantile(&raw, 0.99),
    ])
}

/// P2 on one backend.
pub async fn run(b: Arc<Backend>, small: usize, big: usize) -> anyhow::Result<Figure> {
    let s = at_size(&b, small).await?;
    let l = at_size(&b, big).await?;
    let ratio = l[1] / s[1].max(1e-9);
    Ok(Figure {
        scenario: "P2",
        name: format!(
            "query p99 at {big} runs vs {small} (p50 {:.2} / {:.2} ms; raw SQL p99 {:.2} / {:.2} ms)",
            l[0], s[0], l[3], s[3]
        ),
        backend: b.name(),
        unit: "p99 ms",
        ours: l[1],
        baseline: s[1],
        baseline_name: format!("flowstore's own p99 at {small} runs"),
        ratio,
        target: "p99 at the large size <= 2x p99 at the small",
        met: ratio <= 2.0,
        sizes: format!("{small} and {big} runs in one tenant, {SAMPLES} queries each"),
    })
}
