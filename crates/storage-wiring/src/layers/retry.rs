//! The retry layer: bounded attempts with full-jitter exponential backoff, for
//! temporary errors only ([`storage_ports::Error::is_retryable`]), and only for calls
//! whose operation may be repeated ([`storage_ports::Operation::may_repeat`]). A lost
//! lease, a not-found or invalid input is never retried, and neither is a write that
//! may have taken effect before its connection died (an append, an enqueue without an
//! id): repeating it could do it twice. An error whose retries were spent leaves
//! marked persistent, so that an outer retry does not multiply the attempts.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_ports::Result;

use super::intercept::{Call, Intercept, Next};

/// Bounded retries with backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The backoff of the first retry, in milliseconds, doubled after each (default 50).
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    /// The longest backoff, in milliseconds (default 2000).
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

fn default_attempts() -> u32 {
    4
}
fn default_base_ms() -> u64 {
    50
}
fn default_max_ms() -> u64 {
    2_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            base_ms: default_base_ms(),
            max_ms: default_max_ms(),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1-based): uniform in
    /// `0..=min(max, base * 2^(retry-1))` ("full jitter"), so that clients that failed
    /// together do not come back together.
    #[must_use]
    pub fn pause(&self, retry: u32) -> Duration {
        let cap = self
            .base_ms
            .saturating_mul(1_u64 << retry.saturating_sub(1).min(20))
            .min(self.max_ms);
        Duration::from_millis(random() % (cap + 1))
    }
}

/// Retries temporary failures of repeatable calls under a [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// A retry layer with `policy`.
    #[must_use]
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

impl Intercept for RetryLayer {
    async fn intercept<'a, T: Send + 'a>(
        &'a self,
        call: Call<'a>,
        mut next: Next<'a, T>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            match next.run().await {
                Err(e) if e.is_retryable() && call.may_repeat() => {
                    if attempt >= self.policy.attempts {
                        return Err(e.persistent());
                    }
                    let pause = self.policy.pause(attempt);
                    tracing::warn!(
                        op = call.op.name,
                        kind = %e.kind(),
                        attempt,
                        pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "retrying"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }
}

/// A random u64 from the standard library's per-process random hash keys and a
/// counter: enough for jitter, no extra dependency.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;

    #[test]
    fn pauses_are_jittered_and_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base_ms: 100,
            max_ms: 250,
        };
        let firsts: Vec<u128> = (0..200).map(|_| p.pause(1).as_millis()).collect();
        assert!(firsts.iter().all(|m| *m <= 100));
        assert!(firsts.iter().any(|m| *m != firsts[0]), "no jitter");
        assert!((0..200).all(|_| p.pause(10).as_millis() <= 250));
    }
}
