//! P7, watch latency: the time from a step's append returning to its event's receipt
//! by a watcher of the run, p50 and p99, beside a watcher that polls every 50 ms (what
//! SQLite and PostgreSQL did before they were woken) on the same store. On PostgreSQL
//! the watcher is on a second store, as on another node: it hears of the append only
//! through `NOTIFY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::json;
use storage_ports::{
    EventStream, NewRun, RunId, RunStep, RunStore, TenantId, Timestamp, VariableSnapshot,
    WorkflowId,
};

use crate::backends::Backend;
use crate::measure::{quantile, Figure};

/// The old watcher: one read every 50 ms.
const POLL: Duration = Duration::from_millis(50);

/// Append-to-receipt latencies (ms) of `n` appends: a task drains the watch the
/// whole time, as a live console or engine would, and stamps each event as it
/// arrives; the writer stamps each append as it returns.
async fn latencies(
    writer: &Arc<dyn RunStore>,
    t: &TenantId,
    run: &RunId,
    mut events: EventStream,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            let at = Instant::now();
            match e {
                Ok(e) => {
                    if tx.send((e.seq, at)).is_err() {
                        break;
                    }
                }
                Err(e) => return Err(anyhow::anyhow!("the watch failed: {e}")),
            }
        }
        Ok(())
    });
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let step = RunStep::Snapshot(VariableSnapshot {
            name: "x".into(),
            old_value: json!(i),
            new_value: json!(i + 1),
            at: Timestamp::now(),
        });
        let seq = writer.append(t, run, step).await?;
        let appended = Instant::now();
        loop {
            let (got, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .map_err(|_| anyhow::anyhow!("event {seq} was not delivered in 10 s"))?
                .ok_or_else(|| anyhow::anyhow!("the watch ended"))?;
            if got >= seq {
                // Received before the append returned counts as no wait at all.
                out.push(at.saturating_duration_since(appended).as_secs_f64() * 1_000.0);
                break;
            }
        }
        // Appends are spread out, as an engine's steps are, so a poller's phase varies.
        tokio::time::sleep(Duration::from_millis(7 + (i as u64 * 13) % 23)).await;
    }
    drain.abort();
    Ok(out)
}

/// The baseline watcher: read what is new, sleep 50 ms, again.
fn poller(store: Arc<dyn RunStore>, t: TenantId, run: RunId) -> EventStream {
    let state = (store, t, run, 2_u64, std::collections::VecDeque::new());
    Box::pin(futures_util::stream::unfold(
        state,
        |(store, t, run, mut next, mut buf)| async move {
            loop {
                if let Some(e) = buf.pop_front() {
                    let e: storage_ports::RunEvent = e;
                    next = e.seq + 1;
                    return Some((Ok(e), (store, t, run, next, buf)));
                }
                match store.events(&t, &run, next).await {
                    Ok(events) if events.is_empty() => tokio::time::sleep(POLL).await,
                    Ok(events) => buf.extend(events),
                    Err(e) => return Some((Err(e), (store, t, run, next, buf))),
                }
            }
        },
    ))
}

async fn new_run(writer: &Arc<dyn RunStore>, t: &TenantId) -> anyhow::Result<RunId> {
    let id = RunId::generate();
    writer
        .start(
            t,
            NewRun {
                run_id: id.clone(),
                workflow_id: WorkflowId::new("watched")?,
                version: 1,
                inputs: json!({}),
                started_at: Timestamp::now(),
            },
        )
        .await?;
    Ok(id)
}

/// P7 on one backend: `n` appends watched each way.
pub async fn run(b: Arc<Backend>, n: usize) -> anyhow::Result<Figure> {
    let writer = b.set().runs;
    let watcher = b.second_node().await?.unwrap_or_else(|| writer.clone());
    let t = TenantId::new(format!("p7{}", RunId::generate()))?;

    let run = new_run(&writer, &t).await?;
    let stream = watcher.watch(&t, &run, 2).await?;
    let ours = latencies(&writer, &t, &run, stream, n).await?;

    let run = new_run(&writer, &t).await?;
    let polled = poller(watcher.clone(), t.clone(), run.clone());
    let base = latencies(&writer, &t, &run, polled, n).await?;

    let (p50, p99) = (quantile(&ours, 0.5), quantile(&ours, 0.99));
    let (b50, b99) = (quantile(&base, 0.5), quantile(&base, 0.99));
    Ok(Figure {
        scenario: "P7",
        name: format!(
            "watch latency p50 (p99 {p99:.2} ms; the poller's p99 {b99:.2} ms){}",
            if b.name() == "postgres" {
                ", watcher on a second node"
            } else {
                ""
            }
        ),
        backend: b.name(),
        unit: "p50 ms",
        ours: p50,
        baseline: b50,
        baseline_name: "a watcher polling every 50 ms, same store".into(),
        ratio: p50 / b50.max(1e-9),
        target: "report (woken, not polling)",
        met: p50 < b50,
        sizes: format!("{n} appends, 7-29 ms apart"),
    })
}
