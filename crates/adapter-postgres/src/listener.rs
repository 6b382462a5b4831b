//! The `LISTEN flowstore_queue` task behind Q9: every notification (a job became ready
//! somewhere) bumps a watch channel, and waiters re-check their queue.
//!
//! Notifications sent while the listening connection is down are lost; after a
//! reconnect the task bumps the channel once, so waiters re-check rather than sleep
//! through work that arrived meanwhile. Waiters also re-check every second.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use storage_ports::Result;

use crate::error::SqlxResultExt;

/// The notification channel the `flowstore_jobs` trigger notifies.
pub(crate) const CHANNEL: &str = "flowstore_queue";

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
    ) -> Result<Self> {
        let mut listener = PgListener::connect_with(&pool)
            .await
            .op("postgres.listen")?;
        listener.listen(CHANNEL).await.op("postgres.listen")?;
        let task = tokio::spawn(async move {
            let bump = || changed.send_modify(|v| *v = v.wrapping_add(1));
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => bump(),
                    // The connection was lost; the next call reconnects and listens again.
                    Ok(None) => bump(),
                    Err(e) => {
                        tracing::debug!(error = %e, "queue listener: reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        bump();
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
