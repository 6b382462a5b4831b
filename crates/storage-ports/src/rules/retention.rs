//! Retention arithmetic (spec E9): which finished runs a policy removes.
//!
//! - Running runs are never removed.
//! - Age: a run that started more than `max_age` ago is removed.
//! - Count: beyond the newest `keep_newest_per_workflow` finished runs of a workflow,
//!   runs are removed.
//! - Selective: a failed run younger than `keep_failed_for` is kept whatever the two
//!   rules above say, so failures stay around for diagnosis longer.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{RunId, TenantId, WorkflowId};
use crate::run::{CompleteRun, Run, RunQuery, RunStatus, RunStore};
use crate::time::Timestamp;

/// A retention policy. With every field `None` nothing is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Remove runs older than this.
    #[serde(default, with = "opt_secs")]
    pub max_age: Option<Duration>,
    /// Keep only this many newest finished runs per workflow.
    #[serde(default)]
    pub keep_newest_per_workflow: Option<usize>,
    /// Keep failed runs at least this long.
    #[serde(default, with = "opt_secs")]
    pub keep_failed_for: Option<Duration>,
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// What retention needs to know of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHead {
    /// Id.
    pub run_id: RunId,
    /// Workflow.
    pub workflow_id: WorkflowId,
    /// Status.
    pub status: RunStatus,
    /// Start time.
    pub started_at: Timestamp,
}

impl From<&Run> for RunHead {
    fn from(r: &Run) -> Self {
        Self {
            run_id: r.run_id.clone(),
            workflow_id: r.workflow_id.clone(),
            status: r.status,
            started_at: r.started_at,
        }
    }
}

impl RetentionPolicy {
    /// The runs of `heads` this policy removes at `now`, newest first.
    #[must_use]
    pub fn select(&self, heads: &[RunHead], now: Timestamp) -> Vec<RunId> {
        let mut sorted: Vec<&RunHead> = heads.iter().collect();
        sorted.sort_by(|a, b| (b.started_at, &b.run_id).cmp(&(a.started_at, &a.run_id)));
        let mut finished_seen: HashMap<&WorkflowId, usize> = HashMap::new();
        let mut out = Vec::new();
        for h in sorted {
            if !h.status.is_terminal() {
                continue;
            }
            let rank = finished_seen.entry(&h.workflow_id).or_default();
            let beyond_count = self.keep_newest_per_workflow.is_some_and(|n| *rank >= n);
            *rank += 1;
            let age = now.since(h.started_at);
            let too_old = self.max_age.is_some_and(|m| age > m);
            let protected =
                h.status == RunStatus::Failed && self.keep_failed_for.is_some_and(|k| age <= k);
            if (too_old || beyond_count) && !protected {
                out.push(h.run_id.clone());
            }
        }
        out
    }
}

/// Where pruned runs go before they are deleted. `write` buffers or writes locally;
/// `commit` is async because an archive may end in another system (an object in a
/// bucket), which must hold every run before the first delete.
#[async_trait::async_trait]
pub trait RunArchive: Send {
    /// Writes one whole run.
    ///
    /// # Errors
    /// The archive could not be written; no run is then deleted.
    fn write(&mut self, run: &CompleteRun) -> Result<()>;

    /// Makes everything written durable. Called once, after the last `write` and
    /// before the first delete, so a crash never deletes a run the archive lost.
    ///
    /// # Errors
    /// The archive could not be made durable; no run is then deleted.
    async fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An archive of JSON lines, one [`CompleteRun`] per line, into any writer.
#[derive(Debug)]
pub struct JsonLinesArchive<W: Write> {
    out: W,
    written: usize,
}

impl<W: Write> JsonLinesArchive<W> {
    /// Archives into `out`.
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    /// Runs written so far.
    #[must_use]
    pub fn written(&self) -> usize {
        self.written
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[async_trait::async_trait]
impl<W: Write + Send> RunArchive for JsonLinesArchive<W> {
    fn write(&mut self, run: &CompleteRun) -> Result<()> {
        let io = |e: std::io::Error| Error::backend(format!("archive write failed: {e}"));
        serde_json::to_writer(&mut self.out, run)
            .map_err(|e| Error::backend(format!("archive write failed: {e}")))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.written += 1;
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::backend(format!("archive flush failed: {e}")))
    }
}

/// What a prune did, or would do in a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Runs looked at.
    pub examined: usize,
    /// Runs the policy selects, newest first.
    pub selected: Vec<RunId>,
    /// Runs archived.
    pub archived: usize,
    /// Runs deleted (0 in a dry run).
    pub deleted: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Selected runs kept because their log cannot be read, so they could not be
    /// archived (W10). Reading one by id says why; deleting it by id is the
    /// operator's choice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_damaged: Vec<RunId>,
}

/// The generic prune: list every run head through `query`, select, archive every
/// selected run and commit the archive, then delete. A crash while archiving deletes
/// nothing; a crash while deleting leaves a complete archive, and a rerun archives the
/// rest again (an import skips runs already present). A selected run whose log cannot
/// be read for the archive is kept and reported in `kept_damaged` (W10).
///
/// # Errors
/// Backend or archive errors.
pub async fn prune_by_query<S: RunStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    policy: &RetentionPolicy,
    now: Timestamp,
    dry_run: bool,
    archive: Option<&mut (dyn RunArchive + Send)>,
) -> Result<PruneReport> {
    let mut heads = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(
                tenant,
                RunQuery {
                    limit: 1000,
                    cursor,
                    ..RunQuery::default()
                },
            )
            .await?;
        heads.extend(page.items.iter().map(RunHead::from));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let selected = policy.select(&heads, now);
    let mut report = PruneReport {
        examined: heads.len(),
        selected: selected.clone(),
        dry_run,
        ..PruneReport::default()
    };
    if dry_run {
        return Ok(report);
    }
    let mut deletable = selected;
    if let Some(a) = archive {
        let mut archived = Vec::with_capacity(deletable.len());
        for id in deletable {
            match store.get_complete(tenant, &id).await {
                Ok(run) => {
                    a.write(&run)?;
                    report.archived += 1;
                    archived.push(id);
                }
                Err(e) if e.kind() == crate::ErrorKind::CorruptData => {
                    report.kept_damaged.push(id);
                }
                Err(e) => return Err(e),
            }
        }
        a.commit().await?;
        deletable = archived;
    }
    for id in &deletable {
        store.delete(tenant, id).await?;
        report.deleted += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn head(id: &str, wf: &str, status: RunStatus, days_ago: u64, now: Timestamp) -> RunHead {
        RunHead {
            run_id: RunId::new(id).unwrap_or_else(|e| panic!("{e}")),
            workflow_id: WorkflowId::new(wf).unwrap_or_else(|e| panic!("{e}")),
            status,
            started_at: now.minus(Duration::from_secs(days_ago * DAY)),
        }
    }

    #[test]
    fn selection_by_age_count_and_failed_protection() {
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let heads = [
            head("a-new", "a", RunStatus::Succeeded, 1, now),
            head("a-mid", "a", RunStatus::Succeeded, 10, now),
            head("a-old", "a", RunStatus::Succeeded, 40, now),
            head("a-old-failed", "a", RunStatus::Failed, 45, now),
            head("a-running", "a", RunStatus::Running, 100, now),
            head("b-old", "b", RunStatus::Cancelled, 50, now),
        ];
        let days = |d: u64| Some(Duration::from_secs(d * DAY));
        let cases: [(RetentionPolicy, &[&str]); 5] = [
            (RetentionPolicy::default(), &[]),
            (
                RetentionPolicy {
                    max_age: days(30),
                    ..RetentionPolicy::default()
                },
                &["a-old", "a-old-failed", "b-old"],
            ),
            (
                RetentionPolicy {
                    max_age: days(30),
                    keep_failed_for: days(60),
                    ..RetentionPolicy::default()
                },
                &["a-old", "b-old"],
            ),
            (
                RetentionPolicy {
                    keep_newest_per_workflow: Some(2),
                    ..RetentionPolicy::default()
                },
                &["a-old", "a-old-failed"],
            ),
            (
                RetentionPolicy {
                    max_age: days(5),
                    keep_newest_per_workflow: Some(1),
                    ..RetentionPolicy::default()
                },
                &["a-mid", "a-old", "a-old-failed", "b-old"],
            ),
        ];
        for (i, (policy, want)) in cases.iter().enumerate() {
            let got: Vec<String> = policy
                .select(&heads, now)
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect();
            let mut got_sorted = got.clone();
            got_sorted.sort();
            let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(
                got_sorted, want,
                "case {i}: a running run is never selected"
            );
        }
    }
}
