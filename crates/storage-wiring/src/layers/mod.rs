//! Cross-cutting layers applied to whatever backends are configured, OpenDAL style:
//! a port call goes through [`Layered`], which can open a tracing span for it and retry
//! it. Hosts switch them on in config:
//!
//! ```yaml
//! layers:
//!   tracing: true        # one span per port call: operation, tenant, backend,
//!                        # outcome, duration; never a payload or a secret
//!   retry:               # retryable errors only (Unavailable), idempotent calls only
//!     attempts: 4
//!     base_ms: 50
//!     max_ms: 2000
//! ```

mod layered;
mod retry;

pub use layered::Layered;
pub use retry::{Idempotence, RetryPolicy};

use serde::{Deserialize, Serialize};

/// Which layers wrap the ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerConfig {
    /// One tracing span per port call.
    pub tracing: bool,
    /// Retries of retryable failures of idempotent calls; off when absent.
    pub retry: Option<RetryPolicy>,
}

impl LayerConfig {
    /// Whether any layer is on.
    #[must_use]
    pub fn any(&self) -> bool {
        self.tracing || self.retry.is_some()
    }
}
