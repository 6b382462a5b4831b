//! The metrics layer: per operation, backend, tenant and outcome, a call counter
//! (`flowstore_calls_total`) and a latency histogram in seconds
//! (`flowstore_call_duration_seconds`), through the `metrics` facade. The facade
//! keeps storage-wiring free of any exporter: the host installs the recorder it
//! already uses (Prometheus, StatsD, OpenTelemetry through `metrics-exporter-*`), and
//! without one the calls cost nothing. OpenTelemetry's SDK was not chosen because it
//! brings its own runtime and exporter stack into every build that links flowstore.
//!
//! The outcome label is `ok` or the error kind's name (`not_found`, `lease_lost`, ...).

use std::time::Instant;

use metrics::Label;
use storage_ports::Result;

use super::intercept::{Call, Intercept, Next};

/// The counter of calls.
pub const CALLS_TOTAL: &str = "flowstore_calls_total";
/// The histogram of call durations, in seconds.
pub const CALL_DURATION_SECONDS: &str = "flowstore_call_duration_seconds";

/// Counts and times every port call.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl MetricsLayer {
    /// Describes the two metrics to the installed recorder (their help text and
    /// unit), once, when the layer is built.
    pub fn describe() {
        metrics::describe_counter!(CALLS_TOTAL, "flowstore port calls, by outcome");
        metrics::describe_histogram!(
            CALL_DURATION_SECONDS,
            metrics::Unit::Seconds,
            "flowstore port call latency, by outcome"
        );
    }
}

impl Intercept for MetricsLayer {
    async fn intercept<'a, T: Send + 'a>(
        &'a self,
        call: Call<'a>,
        mut next: Next<'a, T>,
    ) -> Result<T> {
        let started = Instant::now();
        let r = next.run().await;
        let outcome = match &r {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        // The operation and the outcome are static names: only the backend and the
        // tenant are copied per call.
        let labels = vec![
            Label::new("op", call.op.name),
            Label::new("backend", call.backend.to_owned()),
            Label::new("tenant", call.tenant_label().to_owned()),
            Label::new("outcome", outcome),
        ];
        metrics::counter!(CALLS_TOTAL, labels.clone()).increment(1);
        metrics::histogram!(CALL_DURATION_SECONDS, labels).record(started.elapsed().as_secs_f64());
        r
    }
}
