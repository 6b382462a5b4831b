//! Waking the watchers of a run (E7) when its log grows, instead of polling.
//!
//! A store keeps one [`RunWakes`]. Each write that adds events to a run announces it
//! with [`RunWakes::notify`] once it is committed (in the writer's process at once;
//! other processes hear of it through whatever the backend relays, PostgreSQL's
//! `NOTIFY`). A watcher subscribes with [`RunWakes::waiter`] before it first reads
//! the log and reads again whenever [`RunWaiter::changed`] resolves; a wake is only
//! ever a reason to read again.
//!
//! Announcements are counted per watched run, and a waiter remembers the count it
//! last saw, so an announcement made between its read and its wait is never missed.
//! Runs nobody watches are not kept. No runtime is needed: the futures are woken
//! through their own wakers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::{RunId, TenantId};

/// The key that wakes every watcher: announcements may have been lost (a relay
/// reconnected).
pub const EVERY_RUN: &str = "*";

/// The announcement key of one run: `tenant/run`, as PostgreSQL's trigger builds it.
#[must_use]
pub fn run_key(tenant: &TenantId, run: &RunId) -> String {
    format!("{}/{}", tenant.as_str(), run.as_str())
}

#[derive(Debug, Default)]
struct Watched {
    announced: u64,
    waiters: usize,
    wakers: Vec<Waker>,
}

#[derive(Debug, Default)]
struct State {
    runs: HashMap<Arc<str>, Watched>,
    every: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Counters and wakers only: nothing a panic elsewhere could leave half-made.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One store's announcements of runs whose logs grew.
#[derive(Debug, Clone, Default)]
pub struct RunWakes {
    state: Arc<Mutex<State>>,
}

impl RunWakes {
    /// Announces that the log of the run with `key` ([`run_key`], or [`EVERY_RUN`])
    /// grew. A run nobody watches costs a map lookup.
    pub fn notify(&self, key: &str) {
        let woken: Vec<Waker> = {
            let mut s = lock(&self.state);
            if key == EVERY_RUN {
                s.every += 1;
                s.runs
                    .values_mut()
                    .flat_map(|w| std::mem::take(&mut w.wakers))
                    .collect()
            } else if let Some(w) = s.runs.get_mut(key) {
                w.announced += 1;
                std::mem::take(&mut w.wakers)
            } else {
                Vec::new()
            }
        };
        for w in woken {
            w.wake();
        }
    }

    /// Announces a run of `tenant`. Called at every committed append, so with no
    /// watcher at all it only looks at the map, without building the key.
    pub fn notify_run(&self, tenant: &TenantId, run: &RunId) {
        if lock(&self.state).runs.is_empty() {
            // A watcher subscribing now reads after this write committed.
            return;
        }
        self.notify(&run_key(tenant, run));
    }

    /// A waiter for one run, counting announcements from now on.
    #[must_use]
    pub fn waiter(&self, tenant: &TenantId, run: &RunId) -> RunWaiter {
        let key: Arc<str> = Arc::from(run_key(tenant, run));
        let seen = {
            let mut s = lock(&self.state);
            let every = s.every;
            let w = s.runs.entry(key.clone()).or_default();
            w.waiters += 1;
            w.announced + every
        };
        RunWaiter {
            inner: Arc::new(Waiting {
                state: self.state.clone(),
                key,
                seen: Mutex::new(seen),
            }),
        }
    }
}

#[derive(Debug)]
struct Waiting {
    state: Arc<Mutex<State>>,
    key: Arc<str>,
    seen: Mutex<u64>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut s = lock(&self.state);
        if let Some(w) = s.runs.get_mut(&self.key) {
            w.waiters = w.waiters.saturating_sub(1);
            if w.waiters == 0 {
                s.runs.remove(&self.key);
            }
        }
    }
}

/// What a watcher of one run waits on.
#[derive(Debug, Clone)]
pub struct RunWaiter {
    inner: Arc<Waiting>,
}

impl RunWaiter {
    /// Resolves at the first announcement of this run (or of every run) it has not
    /// seen, made before or after the call. Never resolves without one: the caller
    /// bounds the wait with its own fallback timer.
    pub fn changed(&self) -> impl Future<Output = ()> + Send + 'static {
        Changed {
            inner: self.inner.clone(),
        }
    }
}

impl RunWaiter {
    /// [`Self::changed`], or `fallback` if that resolves first: how a watcher bounds
    /// its wait by the backend's re-read interval.
    pub fn changed_or<F>(&self, fallback: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let changed = self.changed();
        async move {
            futures_util::future::select(Box::pin(changed), Box::pin(fallback)).await;
        }
    }
}

struct Changed {
    inner: Arc<Waiting>,
}

impl Future for Changed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.inner;
        let mut s = lock(&inner.state);
        let every = s.every;
        let Some(w) = s.runs.get_mut(&inner.key) else {
            return Poll::Pending;
        };
        let now = w.announced + every;
        let mut seen = inner.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if now != *seen {
            *seen = now;
            return Poll::Ready(());
        }
        // One waker per task: a watcher polls again from the same task after each
        // fallback timeout, and must not pile up wakers while its run is idle.
        if !w.wakers.iter().any(|k| k.will_wake(cx.waker())) {
            w.wakers.push(cx.waker().clone());
        }
        Poll::Pending
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
        let mut cx = Context::from_waker(&waker);
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
            "its own run's is, though made before the wait"
        );
        assert!(!ready(w.changed()), "and only once");
        wakes.notify(EVERY_RUN);
        assert!(ready(w.changed()));
    }

    #[test]
    fn a_pending_wait_is_woken_and_an_idle_one_keeps_one_waker() {
        let wakes = RunWakes::default();
        let (t, r) = ids("acme", "r-1");
        let w = wakes.waiter(&t, &r);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100 {
            let mut f = std::pin::pin!(w.changed());
            assert!(f.as_mut().poll(&mut cx).is_pending());
        }
        let key = run_key(&t, &r);
        let kept = lock(&wakes.state)
            .runs
            .get(key.as_str())
            .map(|x| x.wakers.len());
        assert_eq!(kept, Some(1), "one task, one waker");
        wakes.notify_run(&t, &r);
        assert!(ready(w.changed()));
    }

    #[test]
    fn runs_nobody_watches_are_not_kept() {
        let wakes = RunWakes::default();
        let (t, r) = ids("acme", "r-1");
        let w = wakes.waiter(&t, &r);
        let again = w.clone();
        drop(w);
        assert_eq!(lock(&wakes.state).runs.len(), 1, "a clone still waits");
        drop(again);
        wakes.notify_run(&t, &r);
        assert!(lock(&wakes.state).runs.is_empty());
    }
}
