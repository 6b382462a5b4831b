//! The timeout layer: an attempt that takes longer than its limit is abandoned and
//! fails `Unavailable` (temporary, so that the retry layer outside it may try a
//! repeatable call again). Waiting calls (`queue.wait`, which sleeps up to its own
//! timeout by design) and streams once opened are not limited; a prune is limited by
//! its own `prune_ms`, since it walks a tenant's history.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_ports::{Error, Operation, Result};

use super::intercept::{Call, Intercept, Next};

/// Per-attempt limits, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutPolicy {
    /// The longest one attempt of a port call may take (default 30000).
    #[serde(default = "default_call_ms")]
    pub call_ms: u64,
    /// The longest a prune may take (default 600000).
    #[serde(default = "default_prune_ms")]
    pub prune_ms: u64,
}

fn default_call_ms() -> u64 {
    30_000
}
fn default_prune_ms() -> u64 {
    600_000
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        Self {
            call_ms: default_call_ms(),
            prune_ms: default_prune_ms(),
        }
    }
}

/// Limits each attempt of a port call to a [`TimeoutPolicy`].
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    policy: TimeoutPolicy,
}

impl TimeoutLayer {
    /// A timeout layer with `policy`.
    #[must_use]
    pub fn new(policy: TimeoutPolicy) -> Self {
        Self { policy }
    }

    /// The limit of one attempt of `op`, or `None` for calls that wait by design.
    fn limit(&self, op: Operation) -> Option<Duration> {
        if op == Operation::QUEUE_WAIT {
            None
        } else if op == Operation::RUNS_PRUNE {
            Some(Duration::from_millis(self.policy.prune_ms))
        } else {
            Some(Duration::from_millis(self.policy.call_ms))
        }
    }
}

impl Intercept for TimeoutLayer {
    async fn intercept<'a, T: Send + 'a>(
        &'a self,
        call: Call<'a>,
        mut next: Next<'a, T>,
    ) -> Result<T> {
        let Some(limit) = self.limit(call.op) else {
            return next.run().await;
        };
        match tokio::time::timeout(limit, next.run()).await {
            Ok(r) => r,
            Err(_) => Err(Error::unavailable(format!(
                "{} took longer than {} ms on {}",
                call.op.name,
                limit.as_millis(),
                call.backend
            ))
            .with_operation(call.op.name)),
        }
    }
}
