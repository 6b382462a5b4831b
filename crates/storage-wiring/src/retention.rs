//! Retention in the background (E9): a task that prunes runs on an interval, started by
//! the host from config.
//!
//! ```yaml
//! retention:
//!   every_secs: 3600
//!   policy:
//!     max_age: 2592000                  # seconds: 30 days
//!     keep_newest_per_workflow: 1000
//!     keep_failed_for: 7776000          # failed runs stay 90 days
//!   tenants: [acme, globex]             # default: every tenant the store lists
//!   archive: s3://archive/flowstore/    # or a directory; default: no archive
//! ```
//!
//! Each round also removes the finished jobs whose `keep_for` has passed (Q15), in
//! batches of [`JOB_BATCH`], at most [`JOB_BATCHES_PER_ROUND`] batches per tenant, so
//! a large backlog is worked off over rounds in bounded steps; a queue backend without
//! a history is left alone.
//!
//! With `archive`, each round writes the runs it prunes to a new archive per tenant
//! (see [`crate::archive`]: a file in the directory, or an object under the prefix,
//! whose object store comes from the `AWS_*` variables), made durable and, in a
//! bucket, read back before the first delete; a round that prunes nothing writes
//! nothing. A tenant whose archive cannot be written is not pruned that round.
//!
//! A round that fails for one tenant is logged and the others go on; the next round
//! tries again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_ports::rules::retention::RetentionPolicy;
use storage_ports::{ErrorKind, StoreSet, TenantId, Timestamp};

/// Finished jobs one prune call removes at most.
pub const JOB_BATCH: usize = 1000;
/// Prune calls per tenant per round at most.
pub const JOB_BATCHES_PER_ROUND: usize = 100;

/// What the background task prunes, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Seconds between rounds (at least 1).
    pub every_secs: u64,
    /// What to remove.
    pub policy: RetentionPolicy,
    /// Which tenants; every tenant the store lists when absent.
    #[serde(default)]
    pub tenants: Option<Vec<TenantId>>,
    /// Where pruned runs are archived before they are deleted: a directory or
    /// `s3://bucket/prefix/`. No archive when absent.
    #[serde(default)]
    pub archive: Option<String>,
}

/// The running task; dropping it stops it.
pub type RetentionTask = crate::background::BackgroundTask;

/// One round over the tenants; returns runs deleted.
async fn round(set: &StoreSet, config: &RetentionConfig) -> u64 {
    let Some(tenants) = crate::background::tenants(set, config.tenants.as_ref(), "retention").await
    else {
        return 0;
    };
    let mut deleted = 0;
    for t in &tenants {
        let mut archive = match &config.archive {
            Some(to) => match crate::archive::Archive::new(to, t.as_str(), &objects()) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(tenant = %t, error = %e, "retention: the archive cannot be opened; not pruning this tenant this round");
                    continue;
                }
            },
            None => None,
        };
        let sink = archive
            .as_mut()
            .map(|a| a as &mut (dyn storage_ports::rules::retention::RunArchive + Send));
        match set
            .runs
            .prune(t, &config.policy, Timestamp::now(), false, sink)
            .await
        {
            Ok(r) => {
                deleted += r.deleted as u64;
                if r.deleted > 0 {
                    tracing::info!(tenant = %t, examined = r.examined, deleted = r.deleted, "retention: pruned runs");
                }
            }
            Err(e) => {
                tracing::warn!(tenant = %t, error = %e, "retention: prune failed; next round retries")
            }
        }
        prune_finished_jobs(set, t).await;
    }
    deleted
}

/// The object store of archives in a bucket: the `AWS_*` variables.
fn objects() -> crate::archive::ObjectsConfig {
    #[cfg(feature = "objects")]
    {
        storage_objects::ObjectStoreConfig::from_env()
    }
}

/// Removes `tenant`'s finished jobs past their `keep_for`, in bounded batches; returns
/// how many.
async fn prune_finished_jobs(set: &StoreSet, tenant: &TenantId) -> u64 {
    let mut removed = 0;
    for _ in 0..JOB_BATCHES_PER_ROUND {
        match set.queue.prune_finished(tenant, JOB_BATCH).await {
            Ok(n) => {
                removed += n;
                if n < JOB_BATCH as u64 {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => break,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "retention: pruning finished jobs failed; next round retries");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(tenant = %tenant, removed, "retention: pruned finished jobs");
    }
    removed
}

/// Starts the task on the current tokio runtime.
pub(crate) fn start(set: StoreSet, config: RetentionConfig) -> RetentionTask {
    let period = Duration::from_secs(config.every_secs.max(1));
    crate::background::every(period, move || {
        let (set, config) = (set.clone(), config.clone());
        async move {
            round(&set, &config).await;
        }
    })
}
