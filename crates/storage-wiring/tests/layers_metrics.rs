//! The metrics layer: a known sequence of calls gives known figures, with the
//! operation, backend, tenant and outcome as labels. The recorder is metrics-util's
//! debugging recorder, installed for this test binary alone.

use std::collections::HashMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use storage_ports::{Dequeue, ErrorKind, NewWorkflowVersion, QueueName, TenantId, WorkflowId};
use storage_wiring::layers::{LayerConfig, CALLS_TOTAL, CALL_DURATION_SECONDS};
use storage_wiring::{Storage, StorageConfig};

/// `(metric, op, tenant, outcome)` -> count (a counter's value, or a histogram's
/// number of samples).
type Figures = HashMap<(String, String, String, String), u64>;

fn figures(snapshot: metrics_util::debugging::Snapshot) -> Figures {
    let mut out = Figures::new();
    for (key, _, _, value) in snapshot.into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(label("backend"), "memory", "{key:?}");
        let n = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => {
                assert!(samples.iter().all(|s| s.0 >= 0.0), "{key:?}");
                samples.len() as u64
            }
            DebugValue::Gauge(_) => continue,
        };
        out.insert(
            (
                key.name().to_owned(),
                label("op"),
                label("tenant"),
                label("outcome"),
            ),
            n,
        );
    }
    out
}

#[tokio::test]
async fn a_known_sequence_gives_known_figures() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let mut config = StorageConfig::memory();
    config.layers = LayerConfig {
        metrics: true,
        ..LayerConfig::default()
    };
    let storage = Storage::build(&config).await?;
    let set = storage.ports();
    let (t, wf, q) = (
        TenantId::new("acme")?,
        WorkflowId::new("etl")?,
        QueueName::new("jobs")?,
    );
    set.workflows
        .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 1})))
        .await?;
    for _ in 0..3 {
        set.workflows.get(&t, &wf, 1).await?;
    }
    let missing = set.workflows.get(&t, &wf, 9).await;
    assert_eq!(missing.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    let leased = set
        .queue
        .dequeue(&t, &q, Dequeue::one(std::time::Duration::from_secs(5)))
        .await?;
    assert!(leased.is_empty());

    let got = figures(snapshotter.snapshot());
    let key = |metric: &str, op: &str, outcome: &str| {
        (
            metric.to_owned(),
            op.to_owned(),
            "acme".to_owned(),
            outcome.to_owned(),
        )
    };
    for metric in [CALLS_TOTAL, CALL_DURATION_SECONDS] {
        for (op, outcome, n) in [
            ("workflows.put", "ok", 1),
            ("workflows.get", "ok", 3),
            ("workflows.get", "not_found", 1),
            ("queue.dequeue", "ok", 1),
        ] {
            assert_eq!(
                got.get(&key(metric, op, outcome)).copied(),
                Some(n),
                "{metric} {op} {outcome}: {got:#?}"
            );
        }
    }
    assert_eq!(got.len(), 8, "only the calls made are counted: {got:#?}");
    Ok(())
}
