//! The tracing layer: one span per port call (`flowstore.call`, with the operation,
//! tenant and backend), and one event when it ends with the outcome (ok or the error
//! kind) and the duration. Spans and events carry names and ids only: never a payload,
//! never a secret, never an error message (messages may quote ids a host considers
//! private).

use std::time::Instant;

use storage_ports::Result;
use tracing::Instrument;

use super::intercept::{Call, Intercept, Next};

/// Opens a span around every port call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLayer;

impl Intercept for TracingLayer {
    async fn intercept<'a, T: Send + 'a>(
        &'a self,
        call: Call<'a>,
        mut next: Next<'a, T>,
    ) -> Result<T> {
        let span = tracing::info_span!(
            "flowstore.call",
            op = call.op.name,
            tenant = call.tenant_label(),
            backend = call.backend,
        );
        let started = Instant::now();
        let r = next.run().instrument(span.clone()).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| match &r {
            Ok(_) => tracing::info!(outcome = "ok", elapsed_us, "done"),
            Err(e) => tracing::info!(outcome = e.kind().as_str(), elapsed_us, "done"),
        });
        r
    }
}
