//! Capped exponential retry backoff (spec Q5).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a failed job that may be retried is rescheduled: `base * 2^(attempt-1)`,
/// at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay after the first failed attempt, in milliseconds.
    pub base_ms: u64,
    /// Longest delay, in milliseconds.
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            cap_ms: 300_000,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    #[must_use]
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(63);
        let factor = 1_u64.checked_shl(exp).unwrap_or(u64::MAX);
        Duration::from_millis(self.base_ms.saturating_mul(factor).min(self.cap_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1_000,
        };
        let d: Vec<u128> = (1..=6).map(|a| b.delay_after(a).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(b.delay_after(200).as_millis(), 1_000);
    }

    #[test]
    fn edges_never_overflow() {
        for (b, attempt, want_ms) in [
            (
                Backoff {
                    base_ms: 0,
                    cap_ms: 10,
                },
                5,
                0,
            ),
            (
                Backoff {
                    base_ms: 1,
                    cap_ms: u64::MAX,
                },
                64,
                1 << 63,
            ),
            (
                Backoff {
                    base_ms: 1,
                    cap_ms: u64::MAX,
                },
                u32::MAX,
                1 << 63,
            ),
            (
                Backoff {
                    base_ms: u64::MAX,
                    cap_ms: u64::MAX,
                },
                3,
                u64::MAX,
            ),
            (
                Backoff {
                    base_ms: 100,
                    cap_ms: 50,
                },
                1,
                50,
            ),
            (
                Backoff {
                    base_ms: 100,
                    cap_ms: 1_000,
                },
                0,
                100,
            ),
        ] {
            assert_eq!(
                b.delay_after(attempt),
                std::time::Duration::from_millis(want_ms),
                "{b:?} {attempt}"
            );
        }
    }
}
