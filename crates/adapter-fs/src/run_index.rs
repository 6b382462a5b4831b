//! `<root>/<tenant>/run-index/`: one empty file per run, named by what a query sorts
//! and filters on, so that a query lists one directory (names only) and opens only the
//! heads of the runs it returns, instead of every run of the tenant (E5).
//!
//! A name is `<start>~<run>~<workflow>~<version>`: `<start>` is the start time in
//! microseconds plus 2^53, as 16 hex digits, so that names sort as runs are ordered;
//! `~` is in no id. Status changes, so a status filter still reads the heads it meets.
//!
//! The entry is written (and its directory fsynced) before the run becomes visible,
//! and removed after the run is gone. A crash between the two leaves an entry whose
//! run is missing, or a creator that lost a race leaves one that disagrees with the
//! head it names: an entry counts only when the head agrees with it.
//!
//! Data format 2 introduced the index; opening a format 1 directory builds it (format.rs).

use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use storage_ports::{Result, Run, RunId, TenantId, WorkflowId};

use crate::files::{create_private_dir, io_error, sync_dir};

/// The index directory's name, beside `runs/`.
pub(crate) const DIR: &str = "run-index";

/// Added to a start time so that every storable time is positive.
const OFFSET: i64 = 1 << 53;

/// What one entry's name says about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Start time in microseconds.
    pub started: i64,
    pub run_id: RunId,
    pub workflow_id: WorkflowId,
    pub version: u32,
}

impl Entry {
    pub(crate) fn of(run: &Run) -> Self {
        Self {
            started: run.started_at.as_micros(),
            run_id: run.run_id.clone(),
            workflow_id: run.workflow_id.clone(),
            version: run.version,
        }
    }

    /// The query order key, as `RunQuery::key` gives it.
    pub(crate) fn key(&self) -> (i64, String) {
        (self.started, self.run_id.as_str().to_owned())
    }

    pub(crate) fn name(&self) -> String {
        let start = self.started.saturating_add(OFFSET).max(0);
        format!(
            "{start:016x}~{}~{}~{}",
            self.run_id, self.workflow_id, self.version
        )
    }

    /// `None` for a name this module did not write (a stray file is ignored).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('~');
        let start = i64::from_str_radix(parts.next()?, 16).ok()?;
        let entry = Self {
            started: start.checked_sub(OFFSET)?,
            run_id: RunId::new(parts.next()?).ok()?,
            workflow_id: WorkflowId::new(parts.next()?).ok()?,
            version: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(entry)
    }

    /// Whether `head` is the run this entry was written for.
    pub(crate) fn agrees_with(&self, head: &Run) -> bool {
        *self == Self::of(head)
    }
}

/// The index directory of `tenant` under `root`.
pub(crate) fn dir(root: &Path, tenant: &TenantId) -> PathBuf {
    root.join(tenant.as_str()).join(DIR)
}

/// Writes `run`'s entry durably.
///
/// # Errors
/// `Unavailable` when it cannot be written.
pub(crate) fn add(index: &Path, run: &Run) -> Result<()> {
    create_private_dir(index)?;
    let path = index.join(Entry::of(run).name());
    fs::write(&path, b"").map_err(|e| io_error("indexing run", &path, &e))?;
    sync_dir(index)
}

/// Removes `run`'s entry; one already gone is not an error.
///
/// # Errors
/// `Unavailable` when it cannot be removed.
pub(crate) fn remove(index: &Path, run: &Run) -> Result<()> {
    let path = index.join(Entry::of(run).name());
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(index),
        Err(e) if e.kind() == IoKind::NotFound => Ok(()),
        Err(e) => Err(io_error("unindexing run", &path, &e)),
    }
}

/// Every entry of the index, unsorted. Reads names only.
///
/// # Errors
/// `Unavailable` when the directory cannot be listed.
pub(crate) fn list(index: &Path) -> Result<Vec<Entry>> {
    match fs::read_dir(index) {
        Ok(entries) => Ok(entries
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| Entry::parse(&n))
            .collect()),
        Err(e) if e.kind() == IoKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error("listing", index, &e)),
    }
}

/// Builds the index of every tenant under `root` from the run heads: the upgrade from
/// data format 1. Idempotent, so a crash part-way is mended by running it again.
/// Answers how many runs were indexed; damaged heads are logged and left out.
///
/// # Errors
/// `Unavailable` when a directory cannot be listed or an entry written.
pub(crate) fn rebuild(root: &Path) -> Result<u64> {
    let mut indexed = 0_u64;
    let tenants = match fs::read_dir(root) {
        Ok(t) => t,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("listing", root, &e)),
    };
    for tenant in tenants
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| TenantId::new(n).ok())
    {
        let runs = root.join(tenant.as_str()).join("runs");
        let ids = match fs::read_dir(&runs) {
            Ok(e) => e,
            Err(e) if matches!(e.kind(), IoKind::NotFound | IoKind::NotADirectory) => continue,
            Err(e) => return Err(io_error("listing", &runs, &e)),
        };
        let index = dir(root, &tenant);
        create_private_dir(&index)?;
        for id in ids
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| RunId::new(n).ok())
        {
            match crate::FsStore::read_head(&runs.join(id.as_str()), &id) {
                Ok(head) => {
                    let path = index.join(Entry::of(&head).name());
                    fs::write(&path, b"").map_err(|e| io_error("indexing run", &path, &e))?;
                    indexed += 1;
                }
                Err(e) => {
                    tracing::warn!(%tenant, run = %id, error = %e, "a run that cannot be read is left out of the index")
                }
            }
        }
        sync_dir(&index)?;
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_ports::{NewRun, Timestamp};

    fn run(id: &str, micros: i64) -> Run {
        Run::started(NewRun {
            run_id: RunId::new(id).unwrap_or_else(|e| panic!("{e}")),
            workflow_id: WorkflowId::new("etl.v2-x").unwrap_or_else(|e| panic!("{e}")),
            version: 7,
            inputs: serde_json::Value::Null,
            started_at: Timestamp::from_micros(micros),
        })
    }

    #[test]
    fn names_round_trip_and_sort_as_runs_are_ordered() {
        let times = [
            Timestamp::MIN_STORABLE.as_micros(),
            -1,
            0,
            1,
            1_700_000_000_000_000,
            Timestamp::MAX_STORABLE.as_micros(),
        ];
        let entries: Vec<Entry> = times.iter().map(|t| Entry::of(&run("r.1-a", *t))).collect();
        for e in &entries {
            assert_eq!(Entry::parse(&e.name()).as_ref(), Some(e));
        }
        let mut names: Vec<String> = entries.iter().map(Entry::name).collect();
        names.sort();
        let sorted: Vec<i64> = names
            .iter()
            .filter_map(|n| Entry::parse(n))
            .map(|e| e.started)
            .collect();
        assert_eq!(sorted, times);
        assert_eq!(Entry::parse("stray.txt"), None);
        assert_eq!(Entry::parse("0000000000000001~r~w~1~extra"), None);
    }
}
