//! Waking the watchers of a run (E7) when its log grows, instead of polling.
//!
//! A store keeps one [`RunWakes`]. Each write that adds events to a run announces it
//! with [`RunWakes::notify`] once it is committed (in the writer's process at once;
//! other processes hear of it through whatever the backend relays, PostgreSQL's
//! `NOTIFY`). A watcher subscribes with [`RunWakes::waiter`] before it first reads
//! the log, so nothing announced between its read and its wait is missed, and reads
//! again when [`RunWaiter::changed`] resolves. Announcements that overflow a slow
//! watcher's buffer wake it too: a wake is only ever a reason to read again.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{RunId, TenantId};

/// Announcements a watcher may fall behind by before it is simply woken.
const BUFFER: usize = 1024;

/// The key that wakes every watcher: announcements may have been lost (a relay
/// reconnected).
pub const EVERY_RUN: &str = "*";

/// The announcement key of one run: `tenant/run`, as PostgreSQL's trigger builds it.
#[must_use]
pub fn run_key(tenant: &TenantId, run: &RunId) -> String {
    format!("{}/{}", tenant.as_str(), run.as_str())
}

/// One store's announcements of runs whose logs grew.
#[derive(Debug, Clone)]
pub struct RunWakes {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for RunWakes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl RunWakes {
    /// Announces that the log of the run with `key` ([`run_key`], or [`EVERY_RUN`])
    /// grew. Nobody listening is fine.
    pub fn notify(&self, key: &str) {
        let _ = self.tx.send(Arc::from(key));
    }

    /// Announces a run of `tenant`.
    pub fn notify_run(&self, tenant: &TenantId, run: &RunId) {
        self.notify(&run_key(tenant, run));
    }

    /// A waiter for one run, subscribed from now on.
    #[must_use]
    pub fn waiter(&self, tenant: &TenantId, run: &RunId) -> RunWaiter {
        RunWaiter {
            rx: Arc::new(tokio::sync::Mutex::new(self.tx.subscribe())),
            key: Arc::from(run_key(tenant, run)),
        }
    }
}

/// What a watcher of one run waits on.
#[derive(Debug, Clone)]
pub struct RunWaiter {
    rx: Arc<tokio::sync::Mutex<broadcast::Receiver<Arc<str>>>>,
    key: Arc<str>,
}

impl RunWaiter {
    /// Resolves at the next announcement of this run (or of every run), or when
    /// announcements were lost to a full buffer. Never resolves once the store is
    /// gone: the caller bounds the wait with its own fallback timer.
    pub fn changed(&self) -> impl Future<Output = ()> + Send + 'static {
        let (rx, key) = (self.rx.clone(), self.key.clone());
        async move {
            let mut rx = rx.lock().await;
            loop {
                match rx.recv().await {
                    Ok(k) if *k == *key || &*k == EVERY_RUN => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: &str, r: &str) -> (TenantId, RunId) {
        (
            TenantId::new(t).unwrap_or_else(|e| panic!("{e}")),
            RunId::new(r).unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn ready(f: impl Future<Output = ()>) -> bool {
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_waiter_wakes_for_its_own_run_or_every_run_only() {
        let wakes = RunWakes::default();
        let (t, r) = ids("acme", "r-1");
        let (_, other) = ids("acme", "r-2");
        let w = wakes.waiter(&t, &r);
        wakes.notify_run(&t, &other);
        assert!(
            !ready(w.changed()),
            "another run's announcement is not a wake"
        );
        wakes.notify_run(&t, &r);
        assert!(
            ready(w.changed()),
            "its own run's is, though sent before the wait"
        );
        assert!(!ready(w.changed()), "and only once");
        wakes.notify(EVERY_RUN);
        assert!(ready(w.changed()));
    }

    #[test]
    fn a_waiter_that_fell_behind_is_woken() {
        let wakes = RunWakes::default();
        let (t, r) = ids("acme", "r-1");
        let (_, other) = ids("acme", "r-2");
        let w = wakes.waiter(&t, &r);
        for _ in 0..=BUFFER {
            wakes.notify_run(&t, &other);
        }
        assert!(
            ready(w.changed()),
            "lost announcements may have been its own"
        );
    }
}
