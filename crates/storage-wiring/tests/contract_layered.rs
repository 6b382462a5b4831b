//! The contract suite through the tracing and retry layers (on memory), with every
//! span and event captured at TRACE: the layers change no behaviour, every call is
//! traced, and the trace holds no secret and no payload value (the suite's own
//! sentinels: its credential secret and the distinctive strings of its N2 payload).

use std::io::Write;
use std::sync::{Arc, Mutex};

use storage_wiring::layers::{LayerConfig, RetryPolicy, TimeoutPolicy};
use storage_wiring::{Storage, StorageConfig};

/// Values that must never reach a trace.
const SENTINELS: [&str; 4] = [
    "sk-SENTINEL-7f3a9c-never-print-me",
    "Ελληνικά",
    "DROP TABLE runs",
    "PING",
];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let code = storage_contract::run("memory+layers", || async {
        let mut config = StorageConfig::memory();
        config.layers = LayerConfig {
            tracing: true,
            metrics: true,
            retry: Some(RetryPolicy::default()),
            timeout: Some(TimeoutPolicy::default()),
        };
        Storage::build(&config)
            .await
            .map(|s| s.ports().clone())
            .map_err(|e| e.to_string())
    });
    let text = captured
        .0
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut ok = true;
    for op in [
        "flowstore.call",
        "runs.store_complete",
        "credentials.set",
        "queue.dequeue",
        "outcome",
    ] {
        if !text.contains(op) {
            eprintln!("the trace lacks {op:?}: the layer did not trace every call");
            ok = false;
        }
    }
    for s in SENTINELS {
        if let Some(at) = text.find(s) {
            let line = text[..at].rsplit('\n').next().unwrap_or_default();
            eprintln!("the trace holds the sentinel {s:?}: ...{line}");
            ok = false;
        }
    }
    eprintln!(
        "trace checked: {} bytes, {} calls",
        text.len(),
        text.matches("done").count()
    );
    if ok {
        code
    } else {
        std::process::ExitCode::FAILURE
    }
}
