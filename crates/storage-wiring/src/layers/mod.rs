//! Cross-cutting layers over whatever backends are configured, OpenDAL style. Each
//! layer is an [`Intercept`] in its own file; [`Layered`] forwards every port call to
//! it, so a layer writes only what it changes. Hosts switch them on in config:
//!
//! ```yaml
//! layers:
//!   tracing: true        # one span per port call: operation, tenant, backend,
//!                        # outcome, duration; never a payload or a secret
//!   metrics: true        # flowstore_calls_total and flowstore_call_duration_seconds
//!                        # through the `metrics` facade, to the host's recorder
//!   retry:               # temporary errors only, repeatable operations only
//!     attempts: 4
//!     base_ms: 50
//!     max_ms: 2000
//!   timeout:             # per attempt
//!     call_ms: 30000
//!     prune_ms: 600000
//! ```
//!
//! The order, outermost first: tracing, metrics, retry, timeout. A span and a metric
//! cover a call with its retries; a timeout limits each attempt.

mod intercept;
mod layered;
mod metrics;
mod retry;
mod timeout;
mod tracing;

pub use self::intercept::{Call, CallFuture, Intercept, Next};
pub use self::layered::Layered;
pub use self::metrics::{MetricsLayer, CALLS_TOTAL, CALL_DURATION_SECONDS};
pub use self::retry::{RetryLayer, RetryPolicy};
pub use self::timeout::{TimeoutLayer, TimeoutPolicy};
pub use self::tracing::TracingLayer;

use serde::{Deserialize, Serialize};
use storage_ports::{Concern, StoreSet};

/// Which layers wrap the ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerConfig {
    /// One tracing span per port call.
    pub tracing: bool,
    /// Call counts and latencies through the `metrics` facade.
    pub metrics: bool,
    /// Retries of temporary failures of repeatable calls; off when absent.
    pub retry: Option<RetryPolicy>,
    /// A limit on each attempt; off when absent.
    pub timeout: Option<TimeoutPolicy>,
}

impl LayerConfig {
    /// Whether any layer is on.
    #[must_use]
    pub fn any(&self) -> bool {
        self.tracing || self.metrics || self.retry.is_some() || self.timeout.is_some()
    }

    /// `set` behind the configured layers, innermost first: timeout, retry, metrics,
    /// tracing. `backends` names each concern's backend for the layers.
    #[must_use]
    pub fn apply(&self, set: StoreSet, backends: &[(Concern, String)]) -> StoreSet {
        let mut set = set;
        if let Some(policy) = &self.timeout {
            set = Layered::wrap(set, TimeoutLayer::new(policy.clone()), backends.to_vec());
        }
        if let Some(policy) = &self.retry {
            set = Layered::wrap(set, RetryLayer::new(policy.clone()), backends.to_vec());
        }
        if self.metrics {
            MetricsLayer::describe();
            set = Layered::wrap(set, MetricsLayer, backends.to_vec());
        }
        if self.tracing {
            set = Layered::wrap(set, TracingLayer, backends.to_vec());
        }
        set
    }
}
