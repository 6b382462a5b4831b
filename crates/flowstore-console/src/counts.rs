//! What the overview counts, kept per tenant for a few seconds.
//!
//! Counting is a scan: `stats` counts every run, event, job and document of the
//! tenant, and the last hour's runs are read per status. On a tenant of a million
//! runs that takes longer than a page may (docs/performance.md, P-console), so the
//! overview shows a snapshot at most [`FRESH`] old, says when it was taken, and a
//! request that finds it older is answered from it while one refresh runs behind
//! (stale-while-revalidate). Only the first request of a tenant waits for a count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storage_ports::{PageRequest, RunQuery, RunStatus, StoreStats, TenantId, Timestamp};

use crate::{Console, PageError};

/// How old a snapshot may be before a request starts a new count.
pub(crate) const FRESH: Duration = Duration::from_secs(10);

/// Tenants whose snapshots are kept; beyond, the oldest is forgotten.
const TENANTS: usize = 1024;

/// At most this many runs are counted per status in the last hour; beyond, the page
/// says "1000+".
const COUNTED: usize = PageRequest::MAX_LIMIT;

/// One tenant's counts, taken at one moment.
#[derive(Debug)]
pub(crate) struct Counts {
    pub stats: StoreStats,
    /// Runs started in the hour before `taken_at`, per status: how many (up to
    /// [`COUNTED`]) and whether there are more.
    pub last_hour: Vec<(RunStatus, usize, bool)>,
    /// When they were taken.
    pub taken_at: Timestamp,
    taken: Instant,
}

#[derive(Debug, Default)]
struct Entry {
    counts: Option<Arc<Counts>>,
    refreshing: bool,
}

/// The snapshots, per tenant.
#[derive(Debug, Default)]
pub(crate) struct CountCache {
    entries: Mutex<HashMap<TenantId, Entry>>,
}

async fn count(console: &Console, t: &TenantId) -> Result<Counts, PageError> {
    let ports = console.storage().ports();
    let stats = ports.operations.stats(t).await?;
    let taken_at = Timestamp::now();
    let since = Timestamp::from_micros(taken_at.as_micros() - 3_600_000_000);
    let mut last_hour = Vec::new();
    for status in [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ] {
        let query = RunQuery {
            statuses: vec![status],
            started_from: Some(since),
            limit: COUNTED,
            ..RunQuery::default()
        };
        let page = ports.runs.query(t, query).await?;
        last_hour.push((status, page.items.len(), page.next.is_some()));
    }
    Ok(Counts {
        stats,
        last_hour,
        taken_at,
        taken: Instant::now(),
    })
}

impl CountCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Entry>> {
        // A panic while holding it leaves nothing half-written worth refusing.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's counts: the snapshot when fresh; a stale one while a refresh
    /// runs; a new count when there is none.
    ///
    /// # Errors
    /// The storage's, when there is no snapshot to answer with.
    pub(crate) async fn get(
        console: &Arc<Console>,
        t: &TenantId,
    ) -> Result<Arc<Counts>, PageError> {
        let cache = &console.counts;
        let stale = {
            let mut entries = cache.lock();
            let entry = entries.entry(t.clone()).or_default();
            match &entry.counts {
                Some(c) if c.taken.elapsed() < FRESH => return Ok(c.clone()),
                Some(c) => {
                    let c = c.clone();
                    if !entry.refreshing {
                        entry.refreshing = true;
                        let (console, t) = (console.clone(), t.clone());
                        tokio::spawn(async move {
                            let fresh = count(&console, &t).await.ok().map(Arc::new);
                            console.counts.keep(&t, fresh);
                        });
                    }
                    Some(c)
                }
                None => None,
            }
        };
        if let Some(c) = stale {
            return Ok(c);
        }
        let fresh = Arc::new(count(console, t).await?);
        cache.keep(t, Some(fresh.clone()));
        Ok(fresh)
    }

    /// Keeps `counts` for `t` (or, for a failed refresh, keeps the old ones and
    /// lets the next request try again).
    fn keep(&self, t: &TenantId, counts: Option<Arc<Counts>>) {
        let mut entries = self.lock();
        if entries.len() >= TENANTS && !entries.contains_key(t) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.counts.as_ref().map(|c| c.taken))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        let entry = entries.entry(t.clone()).or_default();
        entry.refreshing = false;
        if counts.is_some() {
            entry.counts = counts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use storage_ports::{NewRun, RunId, WorkflowId};
    use storage_wiring::{Storage, StorageConfig};

    async fn start_run(console: &Console, t: &TenantId) -> Result<(), Box<dyn std::error::Error>> {
        let run = NewRun {
            run_id: RunId::generate(),
            workflow_id: WorkflowId::new("wf")?,
            version: 1,
            inputs: json!({}),
            started_at: Timestamp::now(),
        };
        console.storage().ports().runs.start(t, run).await?;
        Ok(())
    }

    /// Makes the tenant's snapshot look older than [`FRESH`].
    fn age(console: &Console, t: &TenantId) {
        let mut entries = console.counts.lock();
        if let Some(Entry {
            counts: Some(c), ..
        }) = entries.get_mut(t)
        {
            let mut old = Counts {
                stats: c.stats,
                last_hour: c.last_hour.clone(),
                taken_at: c.taken_at,
                taken: c.taken,
            };
            old.taken = Instant::now().checked_sub(FRESH * 2).unwrap_or(old.taken);
            *c = Arc::new(old);
        }
    }

    #[tokio::test]
    async fn a_snapshot_is_served_while_fresh_then_refreshed_behind_a_stale_answer(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let storage = Storage::build(&StorageConfig::memory()).await?;
        let console = Arc::new(Console::new(storage, crate::ConsoleOptions::default()));
        let t = TenantId::new("acme")?;
        start_run(&console, &t).await?;
        assert_eq!(CountCache::get(&console, &t).await?.stats.runs, 1);
        start_run(&console, &t).await?;
        let fresh = CountCache::get(&console, &t).await?;
        assert_eq!(fresh.stats.runs, 1, "a fresh snapshot is served as it is");
        age(&console, &t);
        let stale = CountCache::get(&console, &t).await?;
        assert_eq!(
            stale.stats.runs, 1,
            "a stale one answers while the refresh runs"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while CountCache::get(&console, &t).await?.stats.runs != 2 {
            assert!(Instant::now() < deadline, "the refresh never landed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let running = CountCache::get(&console, &t).await?.last_hour.clone();
        assert_eq!(running.first(), Some(&(RunStatus::Running, 2, false)));
        Ok(())
    }
}
