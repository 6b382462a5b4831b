//! Run logs as files (E1-E11).
//!
//! One directory per run, `<root>/<tenant>/runs/<run>/`:
//! - `run.json`: the head (status, inputs, output, error), replaced atomically on finish;
//! - `steps.jsonl`: one step per line, appended and fsynced before an append returns;
//! - `steps.pos`: how many lines the log holds and where the last ends, so that an
//!   append writes its line without reading the log (see `StepsPosition`).
//!
//! The event log is derived from the two ([`CompleteRun::events`]), so it cannot
//! disagree with the steps. A run appears whole or not at all: it is staged in
//! `<root>/<tenant>/.staging/` and renamed into place; a delete renames it away before
//! removing it. Appends and finishes of one run hold `<run>/.lock`, so they are ordered
//! across processes. A crash in the middle of an append leaves a line without its
//! newline: it was never acknowledged, readers ignore it and the next append cuts it.
//!
//! Queries read `run-index/` (names only) and open just the heads of the page they
//! return (run_index.rs); stats still read every run.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind as IoKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    CompleteRun, Error, ErrorKind, EventStream, NewRun, Page, Result, Run, RunEvent, RunId,
    RunOutcome, RunQuery, RunStep, RunStore, TenantId,
};

use crate::files::{
    corrupt, create_private_dir, io_error, lock_exclusive, read_json, sync_dir, to_json,
    write_atomic,
};
use crate::{run_index, FsStore};

const HEAD: &str = "run.json";
pub(crate) const STEPS: &str = "steps.jsonl";
const LOCK: &str = ".lock";

impl FsStore {
    pub(crate) fn runs_dir(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str()).join("runs")
    }

    /// Where runs are assembled before they appear, and removed after they vanish.
    /// Beside `runs/`, on the same file system, so renames are atomic.
    pub(crate) fn staging_dir(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str()).join(".staging")
    }

    pub(crate) fn run_dir(&self, tenant: &TenantId, id: &RunId) -> PathBuf {
        self.runs_dir(tenant).join(id.as_str())
    }

    /// Reads and checks a run's head.
    pub(crate) fn read_head(dir: &Path, id: &RunId) -> Result<Run> {
        let path = dir.join(HEAD);
        let head: Run = read_json(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => kit::run_missing(id),
            _ => e,
        })?;
        if head.run_id != *id {
            return Err(corrupt(&path, &format!("it holds run {}", head.run_id)));
        }
        Ok(head)
    }

    /// Reads a run's steps. A last line without its newline is an append cut short by a
    /// crash, never acknowledged: it is ignored.
    fn read_steps(dir: &Path) -> Result<Vec<RunStep>> {
        Self::read_step_lines(dir)?.into_iter().collect()
    }

    /// Each step line decoded on its own, in order, so that one damaged line costs
    /// only its own event (W10).
    fn read_step_lines(dir: &Path) -> Result<Vec<Result<RunStep>>> {
        let path = dir.join(STEPS);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("reading", &path, &e)),
        };
        let complete = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(&bytes[..0], |i| &bytes[..=i]);
        Ok(complete
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_slice(line)
                    .map_err(|e| corrupt(&path, &format!("line {}: {e}", i + 1)))
            })
            .collect())
    }

    /// The run's events from `from_seq`, a damaged step line logged and passed over.
    fn events_blocking(
        &self,
        tenant: &TenantId,
        id: &RunId,
        from_seq: u64,
    ) -> Result<Vec<RunEvent>> {
        let dir = self.run_dir(tenant, id);
        let run = Self::read_head(&dir, id)?;
        let lines = Self::read_step_lines(&dir)?;
        let mut out = Vec::with_capacity(lines.len() + 2);
        out.push(RunEvent::started(&run));
        let mut seq = 1_u64;
        for line in lines {
            seq += 1;
            match line {
                Ok(step) => out.push(RunEvent::step(seq, step)),
                Err(e) => {
                    tracing::warn!(%tenant, run = %id, error = %e, "a damaged run event is skipped")
                }
            }
        }
        out.extend(RunEvent::finished(seq + 1, &run));
        out.retain(|e| e.seq >= from_seq);
        Ok(out)
    }

    fn read_complete(dir: &Path, id: &RunId) -> Result<CompleteRun> {
        let run = Self::read_head(dir, id)?;
        let steps = Self::read_steps(dir)?;
        Ok(CompleteRun { run, steps })
    }

    /// Makes `complete` appear whole under `runs/`, or fails with `AlreadyExists` if the id
    /// is taken.
    fn create_run(&self, tenant: &TenantId, complete: &CompleteRun) -> Result<()> {
        let id = &complete.run.run_id;
        let runs = self.runs_dir(tenant);
        let target = runs.join(id.as_str());
        if target.exists() {
            return Err(already_exists(id));
        }
        let staging = self.staging_dir(tenant);
        create_private_dir(&staging)?;
        create_private_dir(&runs)?;
        // Indexed before it is visible; an entry whose run never appeared is ignored.
        run_index::add(&run_index::dir(&self.root, tenant), &complete.run)?;
        let tmp = staging.join(format!("run-{}", uuid::Uuid::new_v4().simple()));
        let staged = (|| {
            create_private_dir(&tmp)?;
            write_new(&tmp.join(HEAD), &to_json(&complete.run)?)?;
            let mut lines = Vec::new();
            for step in &complete.steps {
                lines.extend(step_line(step)?);
            }
            write_new(&tmp.join(STEPS), &lines)?;
            sync_dir(&tmp)
        })();
        if let Err(e) = staged {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // rename(2) refuses to replace a non-empty directory, so two creators of one id
        // cannot both win.
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(match e.kind() {
                IoKind::DirectoryNotEmpty | IoKind::AlreadyExists => already_exists(id),
                _ => io_error("creating run", &target, &e),
            });
        }
        sync_dir(&runs)
    }

    /// Locks a run for a change and reads its head.
    fn lock_run(&self, tenant: &TenantId, id: &RunId) -> Result<(fs::File, PathBuf, Run)> {
        let dir = self.run_dir(tenant, id);
        if !dir.is_dir() {
            return Err(kit::run_missing(id));
        }
        let lock = lock_exclusive(&dir.join(LOCK)).map_err(|e| match e.kind() {
            ErrorKind::NotFound => kit::run_missing(id),
            _ => e,
        })?;
        // Read under the lock: a delete may have moved the directory meanwhile.
        let head = Self::read_head(&dir, id)?;
        Ok((lock, dir, head))
    }

    fn append_blocking(&self, tenant: &TenantId, id: &RunId, step: &RunStep) -> Result<u64> {
        let (_lock, dir, head) = self.lock_run(tenant, id)?;
        if head.status.is_terminal() {
            return Err(kit::run_finished(id));
        }
        let path = dir.join(STEPS);
        let line = step_line(step)?;
        let append = || -> std::io::Result<u64> {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let size = f.metadata()?.len();
            // Where the last acknowledged line ends and how many lines precede it: from
            // the position file when it matches the log (the usual case, no read of the
            // log), else by reading the log from the last known position (after a crash,
            // or a log written before position files existed).
            let known = StepsPosition::read(&dir);
            let (mut count, mut end) = match known {
                Some(p) if p.end <= size && ends_line(&mut f, p.end)? => (p.count, p.end),
                _ => (0, 0),
            };
            if end < size {
                f.seek(SeekFrom::Start(end))?;
                let mut tail = Vec::new();
                f.read_to_end(&mut tail)?;
                let keep = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                count += tail[..keep].iter().filter(|b| **b == b'\n').count() as u64;
                end += keep as u64;
                if end != size {
                    // A line cut short by a crash, never acknowledged.
                    f.set_len(end)?;
                }
            }
            f.seek(SeekFrom::Start(end))?;
            f.write_all(&line)?;
            f.sync_data()?;
            StepsPosition {
                count: count + 1,
                end: end + line.len() as u64,
            }
            .write(&dir);
            // Event 1 is `Started`; step n is event n + 1.
            Ok(count + 2)
        };
        append().map_err(|e| io_error("appending to", &path, &e))
    }

    fn finish_blocking(&self, tenant: &TenantId, id: &RunId, outcome: RunOutcome) -> Result<Run> {
        let (_lock, dir, mut head) = self.lock_run(tenant, id)?;
        if head.status.is_terminal() {
            return Err(kit::run_finished(id));
        }
        head.apply(outcome);
        write_atomic(&dir.join(HEAD), &to_json(&head)?)?;
        Ok(head)
    }

    fn delete_blocking(&self, tenant: &TenantId, id: &RunId) -> Result<()> {
        let (lock, dir, head) = self.lock_run(tenant, id)?;
        let staging = self.staging_dir(tenant);
        create_private_dir(&staging)?;
        let trash = staging.join(format!("deleted-{}", uuid::Uuid::new_v4().simple()));
        fs::rename(&dir, &trash).map_err(|e| io_error("deleting run", &dir, &e))?;
        sync_dir(&self.runs_dir(tenant))?;
        // Gone first, unindexed after: an entry whose run is missing is ignored.
        run_index::remove(&run_index::dir(&self.root, tenant), &head)?;
        drop(lock);
        if let Err(e) = fs::remove_dir_all(&trash) {
            tracing::warn!(path = %trash.display(), error = %e, "could not remove a deleted run's files");
        }
        Ok(())
    }

    /// A query page from the index: the entries that can match, newest first, then
    /// the heads of those entries only until the page is full (E5).
    fn query_blocking(&self, tenant: &TenantId, query: &RunQuery) -> Result<Page<Run>> {
        let after = query.after()?;
        let limit = query.limit.clamp(1, storage_ports::PageRequest::MAX_LIMIT);
        let from = query.started_from.map(storage_ports::Timestamp::as_micros);
        let before = query
            .started_before
            .map(storage_ports::Timestamp::as_micros);
        let mut entries: Vec<run_index::Entry> =
            run_index::list(&run_index::dir(&self.root, tenant))?
                .into_iter()
                .filter(|e| {
                    query
                        .workflow_id
                        .as_ref()
                        .is_none_or(|w| *w == e.workflow_id)
                })
                .filter(|e| query.version.is_none_or(|v| v == e.version))
                .filter(|e| from.is_none_or(|f| e.started >= f))
                .filter(|e| before.is_none_or(|b| e.started < b))
                .filter(|e| after.as_ref().is_none_or(|a| e.key() < *a))
                .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.key()));
        let runs = self.runs_dir(tenant);
        let mut candidates = Vec::with_capacity(limit + 1);
        for e in entries {
            match Self::read_head(&runs.join(e.run_id.as_str()), &e.run_id) {
                Ok(head) if e.agrees_with(&head) && query.matches(&head) => candidates.push(head),
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::CorruptData => {
                    tracing::warn!(%tenant, run = %e.run_id, error = %err, "a damaged run is skipped");
                }
                // Deleted, or never made visible by a creator that crashed.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            if candidates.len() > limit {
                break;
            }
        }
        Ok(Page::from_candidates(
            storage_ports::adapter_kit::cursors::RUNS,
            candidates,
            limit,
            RunQuery::key,
        ))
    }

    /// How many events a run's log holds (for stats); a damaged run counts none.
    pub(crate) fn event_count(&self, tenant: &TenantId, head: &Run) -> u64 {
        let steps = Self::read_steps(&self.run_dir(tenant, &head.run_id)).map_or(0, |s| s.len());
        1 + steps as u64 + u64::from(head.status.is_terminal())
    }

    /// Every readable run head of a tenant; damaged ones are logged and skipped (W10).
    pub(crate) fn run_heads(&self, tenant: &TenantId) -> Result<Vec<Run>> {
        let dir = self.runs_dir(tenant);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", &dir, &e)),
        };
        let mut out = Vec::new();
        for id in entries
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| RunId::new(n).ok())
        {
            match Self::read_head(&dir.join(id.as_str()), &id) {
                Ok(head) => out.push(head),
                Err(e) if e.kind() == ErrorKind::CorruptData => {
                    tracing::warn!(error = %e, "skipping a damaged run");
                }
                // Deleted between listing and reading.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// How old a staged or deleted run directory must be before `open` removes it: older
/// than any creation or delete still in flight in another process.
const STAGING_MAX_AGE: Duration = Duration::from_secs(3600);

/// Removes what crashed creators and deleters left in `<tenant>/.staging/`. Best
/// effort: a failure is logged, never fatal.
pub(crate) fn sweep_staging(root: &Path) {
    let Ok(tenants) = fs::read_dir(root) else {
        return;
    };
    for tenant in tenants.filter_map(std::result::Result::ok) {
        let Ok(entries) = fs::read_dir(tenant.path().join(".staging")) else {
            continue;
        };
        for e in entries.filter_map(std::result::Result::ok) {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STAGING_MAX_AGE);
            if old {
                if let Err(err) = fs::remove_dir_all(e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "could not remove leftover staging files");
                }
            }
        }
    }
}

/// Whether `end` is the start of the log or just after a newline.
fn ends_line(f: &mut fs::File, end: u64) -> std::io::Result<bool> {
    if end == 0 {
        return Ok(true);
    }
    let mut last = [0_u8; 1];
    f.seek(SeekFrom::Start(end - 1))?;
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// `steps.pos`: how many complete lines `steps.jsonl` holds and where the last ends, so
/// that an append costs the step, not the log (`count end check`, one line). Written
/// after the step is fsynced and not fsynced itself: after a crash it may lag behind
/// the log, never run ahead of it, and a lagging or unreadable one only makes the next
/// append read the log from the last position it trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepsPosition {
    count: u64,
    end: u64,
}

impl StepsPosition {
    const FILE: &'static str = "steps.pos";

    /// A check that a torn or edited file is not taken for a position.
    fn check(count: u64, end: u64) -> u64 {
        count.rotate_left(17) ^ end ^ 0x666c_6f77_7374_6f72
    }

    fn read(dir: &Path) -> Option<Self> {
        let text = fs::read_to_string(dir.join(Self::FILE)).ok()?;
        let mut parts = text.split_whitespace().map(str::parse::<u64>);
        let (count, end, check) = (
            parts.next()?.ok()?,
            parts.next()?.ok()?,
            parts.next()?.ok()?,
        );
        (check == Self::check(count, end)).then_some(Self { count, end })
    }

    fn write(self, dir: &Path) {
        let text = format!(
            "{} {} {}\n",
            self.count,
            self.end,
            Self::check(self.count, self.end)
        );
        // Losing this costs the next append a read of the log, nothing more.
        let _ = fs::write(dir.join(Self::FILE), text);
    }
}

fn already_exists(id: &RunId) -> Error {
    kit::run_taken(id)
}

fn step_line(step: &RunStep) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(step)
        .map_err(|e| Error::invalid_input(format!("cannot serialize the step: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

/// Writes a new file and flushes it; the caller syncs the directory.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| io_error("writing", path, &e))
}

#[async_trait]
impl RunStore for FsStore {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.limit.check_new_run(&new)?;
        let t = tenant.clone();
        self.blocking(move |s| {
            let complete = CompleteRun {
                run: Run::started(new),
                steps: Vec::new(),
            };
            s.create_run(&t, &complete)?;
            Ok(complete.run)
        })
        .await
    }

    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.limit.check_step(&step)?;
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| s.append_blocking(&t, &r, &step))
            .await
    }

    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.limit.check_outcome(&outcome)?;
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| s.finish_blocking(&t, &r, outcome))
            .await
    }

    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.limit.check_run(&run)?;
        let t = tenant.clone();
        self.blocking(move |s| s.create_run(&t, &run)).await
    }

    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        let t = tenant.clone();
        self.blocking(move |s| {
            Ok(runs
                .iter()
                .map(|r| {
                    s.limit.check_run(r)?;
                    s.create_run(&t, r)
                })
                .collect())
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| Self::read_head(&s.run_dir(&t, &r), &r))
            .await
    }

    async fn get_complete(&self, tenant: &TenantId, run: &RunId) -> Result<CompleteRun> {
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| Self::read_complete(&s.run_dir(&t, &r), &r))
            .await
    }

    async fn query(&self, tenant: &TenantId, query: RunQuery) -> Result<Page<Run>> {
        query.after()?;
        let t = tenant.clone();
        self.blocking(move |s| s.query_blocking(&t, &query)).await
    }

    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| s.events_blocking(&t, &r, from_seq))
            .await
    }

    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        self.get(tenant, run).await?;
        Ok(crate::watch::watch(
            self.clone(),
            tenant.clone(),
            run.clone(),
            from_seq,
        ))
    }

    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let (t, r) = (tenant.clone(), run.clone());
        self.blocking(move |s| s.delete_blocking(&t, &r)).await
    }

    async fn prune(
        &self,
        tenant: &TenantId,
        policy: &storage_ports::RetentionPolicy,
        now: storage_ports::Timestamp,
        dry_run: bool,
        archive: Option<&mut (dyn storage_ports::RunArchive + Send)>,
    ) -> Result<storage_ports::PruneReport> {
        storage_ports::rules::retention::prune_by_query(self, tenant, policy, now, dry_run, archive)
            .await
    }
}
