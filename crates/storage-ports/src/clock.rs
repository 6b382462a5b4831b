//! Where an adapter reads "now" when the backend has no clock of its own.
//!
//! PostgreSQL and Redis take every time decision on the server's clock, shared by every
//! node. The embedded backends (memory, SQLite, files) have only the host's clock, and
//! read it through a [`Clock`]: the host can hand in its own, and tests hand in a
//! [`ManualClock`] to skew one node or to step time instead of sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::time::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `at`.
    #[must_use]
    pub fn at(at: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(at.as_micros())))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        // A failed update means another thread moved it; fetch_update retries.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(us))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

/// A shared clock handle, as adapters keep it.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a shared handle (the default of every embedded adapter).
#[must_use]
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let c = ManualClock::at(Timestamp::from_micros(1_000));
        let d = c.clone();
        assert_eq!(c.now(), Timestamp::from_micros(1_000));
        d.advance(Duration::from_millis(2));
        assert_eq!(c.now(), Timestamp::from_micros(3_000));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Timestamp::from_micros(i64::MAX));
    }
}
