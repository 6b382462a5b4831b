//! P6, the fs run log's append cost at step 10 and at step 10,000 of one run: an
//! append writes its line and fsyncs it (production durability), so its cost must
//! not grow with the log already written. The step-10 figure is the baseline.

use std::path::Path;
use std::time::Instant;

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{
    CompleteRun, NewRun, Run, RunId, RunStep, RunStore, TenantId, Timestamp, VariableSnapshot,
    WorkflowId,
};

use crate::measure::{median, Figure};

fn step(n: usize) -> RunStep {
    RunStep::Snapshot(VariableSnapshot {
        name: format!("v{}", n % 16),
        old_value: json!(n),
        new_value: json!({ "n": n + 1, "note": "a variable changed by a node" }),
        at: Timestamp::now(),
    })
}

/// Median milliseconds of `appends` appends to a running run that already holds
/// `before` steps (the first append after opening is left out: it finds no position
/// file and reads the log once).
async fn append_cost(store: &FsStore, before: usize, appends: usize) -> anyhow::Result<f64> {
    let t = TenantId::new("bench")?;
    let run = Run::started(NewRun {
        run_id: RunId::generate(),
        workflow_id: WorkflowId::new("append")?,
        version: 1,
        inputs: json!({}),
        started_at: Timestamp::now(),
    });
    let id = run.run_id.clone();
    store
        .store_complete(
            &t,
            CompleteRun {
                run,
                steps: (0..before).map(step).collect(),
            },
        )
        .await?;
    store.append(&t, &id, step(before)).await?;
    let mut ms = Vec::with_capacity(appends);
    for n in 0..appends {
        let started = Instant::now();
        store.append(&t, &id, step(before + 1 + n)).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(&ms))
}

/// P6: appends at step 10 and at step 10,000, `appends` each, alternating rounds.
pub async fn run(base: &Path, rounds: usize, appends: usize) -> anyhow::Result<Figure> {
    let store = FsStore::open(base.join("fs-append"))?;
    let (mut early, mut late) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        early.push(append_cost(&store, 9, appends).await?);
        late.push(append_cost(&store, 9_999, appends).await?);
    }
    let (e, l) = (median(&early), median(&late));
    let ratio = l / e.max(1e-9);
    Ok(Figure {
        scenario: "P6",
        name: "fs run-log append at step 10,000 (fsynced)".into(),
        backend: "fs",
        unit: "ms",
        ours: l,
        baseline: e,
        baseline_name: "the same append at step 10 of another run".into(),
        ratio,
        target: "ratio <= 1.5 (an append costs the step, not the log)",
        met: ratio <= 1.5,
        sizes: format!("{appends} appends per run, {rounds} rounds"),
    })
}
