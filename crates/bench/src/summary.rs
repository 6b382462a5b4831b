//! P4, metrics summary latency: `summary(workflow)` after a small and a large number of
//! recorded runs. Aggregates are folded on record, so reading one must not scan: the
//! figure is the ratio of the medians.

use std::sync::Arc;

use storage_ports::{MetricName, RunId, RunMetric, RunStatus, TenantId, Timestamp, WorkflowId};

use crate::backends::Backend;
use crate::measure::{latencies, quantile, Figure};

const SAMPLES: usize = 200;
const RECORDERS: usize = 8;

async fn p50_after(b: &Arc<Backend>, n: usize) -> anyhow::Result<f64> {
    let set = b.set();
    let t = TenantId::new(format!("p4{}", RunId::generate()))?;
    let wf = WorkflowId::new("wf")?;
    let mut tasks = Vec::new();
    for w in 0..RECORDERS {
        let (set, t, wf) = (set.clone(), t.clone(), wf.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(RECORDERS) {
                #[allow(clippy::cast_precision_loss)]
                let v = i as f64;
                set.metrics
                    .record(
                        &t,
                        RunMetric {
                            run_id: RunId::generate(),
                            workflow_id: wf.clone(),
                            version: 1 + u32::try_from(i % 3)?,
                            status: if i % 10 == 0 {
                                RunStatus::Failed
                            } else {
                                RunStatus::Succeeded
                            },
                            duration_ms: 10.0 + v % 500.0,
                            finished_at: Timestamp::now(),
                            values: [(MetricName::new("tokens")?, v)].into(),
                        },
                    )
                    .await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let lat = latencies(SAMPLES, || {
        let (set, t, wf) = (set.clone(), t.clone(), wf.clone());
        async move {
            let s = set.metrics.summary(&t, &wf, None).await?;
            anyhow::ensure!(s.runs == n as u64, "summary counts {} of {n}", s.runs);
            Ok(())
        }
    })
    .await?;
    Ok(quantile(&lat, 0.5))
}

/// P4 on one backend.
pub async fn run(b: Arc<Backend>, small: usize, big: usize) -> anyhow::Result<Figure> {
    let s = p50_after(&b, small).await?;
    let l = p50_after(&b, big).await?;
    let ratio = l / s.max(1e-9);
    Ok(Figure {
        scenario: "P4",
        name: format!("metrics summary p50 after {big} recorded runs vs {small}"),
        backend: b.name(),
        unit: "p50 ms",
        ours: l,
        baseline: s,
        baseline_name: format!("the same summary after {small} runs"),
        ratio,
        target: "ratio <= 2 (no scan)",
        met: ratio <= 2.0,
        sizes: format!("{small} and {big} records, {SAMPLES} summaries each"),
    })
}
