//! What the background tasks (retention, the scheduler) share: a handle that stops
//! its task when dropped, a round on an interval, and the tenants a round covers.

use std::future::Future;
use std::time::Duration;

use storage_ports::{StoreSet, TenantId};

/// A running background task; dropping it stops it.
#[derive(Debug)]
pub struct BackgroundTask {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Runs `round` now and then every `period` on the current tokio runtime; a round
/// that overruns delays the next instead of bunching them up.
pub(crate) fn every<F, Fut>(period: Duration, mut round: F) -> BackgroundTask
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round().await;
        }
    });
    BackgroundTask { handle }
}

/// The tenants a round of `task` covers: the configured ones, else every tenant the
/// store lists; `None` (logged) when it cannot list them, so the round is skipped.
pub(crate) async fn tenants(
    set: &StoreSet,
    configured: Option<&Vec<TenantId>>,
    task: &str,
) -> Option<Vec<TenantId>> {
    if let Some(t) = configured {
        return Some(t.clone());
    }
    match set.operations.tenants().await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "{task}: cannot list tenants; name them in {task}.tenants");
            None
        }
    }
}
