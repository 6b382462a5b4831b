//! The `LISTEN` task behind Q9 and E7, one connection per store:
//! - `flowstore_queue` (a job became ready somewhere) bumps a watch channel, and
//!   queue waiters re-check their queue;
//! - `flowstore_runs` (a run's log grew, `<tenant>/<run_id>`) is announced to the
//!   run watchers of this process ([`RunWakes`]), and the watchers of that run read
//!   again.
//!
//! Notifications sent while the listening connection is down are lost; after a
//! reconnect the task wakes every waiter and watcher once, so they re-check rather
//! than sleep through what happened meanwhile. Both also re-check every second.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use storage_ports::adapter_kit::run_wakes::{RunWakes, EVERY_RUN};
use storage_ports::Result;

use crate::error::SqlxResultExt;

/// The notification channel the `flowstore_jobs` trigger notifies.
pub(crate) const CHANNEL: &str = "flowstore_queue";

/// The notification channel the `flowstore_run_events` trigger notifies.
const RUNS_CHANNEL: &str = "flowstore_runs";

/// The running listener task; stopped when dropped (with the last store clone).
#[derive(Debug)]
pub(crate) struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Subscribes, then forwards notifications to `changed` until dropped.
    pub(crate) async fn start(
        pool: PgPool,
        changed: Arc<tokio::sync::watch::Sender<u64>>,
        runs: RunWakes,
    ) -> Result<Self> {
        let mut listener = PgListener::connect_with(&pool)
            .await
            .op("postgres.listen")?;
        listener
            .listen_all([CHANNEL, RUNS_CHANNEL])
            .await
            .op("postgres.listen")?;
        let task = tokio::spawn(async move {
            let bump = || changed.send_modify(|v| *v = v.wrapping_add(1));
            let lost = || {
                bump();
                runs.notify(EVERY_RUN);
            };
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.channel() == RUNS_CHANNEL => runs.notify(n.payload()),
                    Ok(Some(_)) => bump(),
                    // The connection was lost; the next call reconnects and listens again.
                    Ok(None) => lost(),
                    Err(e) => {
                        tracing::debug!(error = %e, "listener: reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        lost();
                    }
                }
            }
        });
        Ok(Self { task })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
