//! Run logs in memory (E1-E11).

use std::collections::VecDeque;

use async_trait::async_trait;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    CompleteRun, EventStream, NewRun, Page, Result, Run, RunEvent, RunEventKind, RunId, RunOutcome,
    RunQuery, RunStep, RunStore, TenantId,
};

use crate::state::RunRecord;
use crate::MemoryStore;

impl MemoryStore {
    /// Inserts a whole run; the caller holds no lock.
    fn insert_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.limit().check_run(&run)?;
        let events = run.events();
        let mut state = self.lock();
        let runs = &mut state.tenant(tenant).runs;
        if runs.contains_key(&run.run.run_id) {
            return Err(kit::run_taken(&run.run.run_id));
        }
        runs.insert(
            run.run.run_id.clone(),
            RunRecord {
                run: run.run,
                events,
            },
        );
        Ok(())
    }

    /// Starts a run under an already held lock (shared with transactions).
    pub(crate) fn start_locked(
        state: &mut crate::state::State,
        tenant: &TenantId,
        new: NewRun,
    ) -> Result<Run> {
        let runs = &mut state.tenant(tenant).runs;
        if runs.contains_key(&new.run_id) {
            return Err(kit::run_taken(&new.run_id));
        }
        let run = Run::started(new);
        let started = RunEvent {
            seq: 1,
            at: run.started_at,
            kind: RunEventKind::Started,
        };
        runs.insert(
            run.run_id.clone(),
            RunRecord {
                run: run.clone(),
                events: vec![started],
            },
        );
        Ok(run)
    }
}

fn steps_of(events: &[RunEvent]) -> Vec<RunStep> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Step(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.limit().check_new_run(&new)?;
        let run = Self::start_locked(&mut self.lock(), tenant, new)?;
        self.notify_runs();
        Ok(run)
    }

    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.limit().check_step(&step)?;
        let seq = {
            let mut state = self.lock();
            let rec = state
                .tenant(tenant)
                .runs
                .get_mut(run)
                .ok_or_else(|| kit::run_missing(run))?;
            if rec.run.status.is_terminal() {
                return Err(kit::run_finished(run));
            }
            let seq = rec.events.len() as u64 + 1;
            rec.events.push(RunEvent {
                seq,
                at: step.at(),
                kind: RunEventKind::Step(step),
            });
            seq
        };
        self.notify_runs();
        Ok(seq)
    }

    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.limit().check_outcome(&outcome)?;
        let head = {
            let mut state = self.lock();
            let rec = state
                .tenant(tenant)
                .runs
                .get_mut(run)
                .ok_or_else(|| kit::run_missing(run))?;
            if rec.run.status.is_terminal() {
                return Err(kit::run_finished(run));
            }
            let (status, at) = (outcome.status, outcome.ended_at);
            rec.run.apply(outcome);
            let seq = rec.events.len() as u64 + 1;
            rec.events.push(RunEvent {
                seq,
                at,
                kind: RunEventKind::Finished { status },
            });
            rec.run.clone()
        };
        self.notify_runs();
        Ok(head)
    }

    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.insert_complete(tenant, run)?;
        self.notify_runs();
        Ok(())
    }

    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        let out = runs
            .into_iter()
            .map(|r| self.insert_complete(tenant, r))
            .collect();
        self.notify_runs();
        Ok(out)
    }

    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        self.lock()
            .tenant(tenant)
            .runs
            .get(run)
            .map(|r| r.run.clone())
            .ok_or_else(|| kit::run_missing(run))
    }

    async fn get_complete(&self, tenant: &TenantId, run: &RunId) -> Result<CompleteRun> {
        let mut state = self.lock();
        let rec = state
            .tenant(tenant)
            .runs
            .get(run)
            .ok_or_else(|| kit::run_missing(run))?;
        Ok(CompleteRun {
            run: rec.run.clone(),
            steps: steps_of(&rec.events),
        })
    }

    async fn query(&self, tenant: &TenantId, query: RunQuery) -> Result<Page<Run>> {
        let mut state = self.lock();
        query.page_of(state.tenant(tenant).runs.values().map(|r| &r.run))
    }

    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        let mut state = self.lock();
        let rec = state
            .tenant(tenant)
            .runs
            .get(run)
            .ok_or_else(|| kit::run_missing(run))?;
        Ok(rec
            .events
            .iter()
            .filter(|e| e.seq >= from_seq)
            .cloned()
            .collect())
    }

    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        // Fail now, not on first poll, when the run does not exist.
        self.events(tenant, run, u64::MAX).await?;
        let watcher = Watcher {
            store: self.clone(),
            tenant: tenant.clone(),
            run: run.clone(),
            next_seq: from_seq.max(1),
            buffer: VecDeque::new(),
            changes: self.inner.runs_changed.subscribe(),
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            watcher,
            Watcher::next,
        )))
    }

    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let removed = self.lock().tenant(tenant).runs.remove(run);
        self.notify_runs();
        removed.map(|_| ()).ok_or_else(|| kit::run_missing(run))
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

/// A live reader of one run's events: drains what is stored, then waits for a change.
struct Watcher {
    store: MemoryStore,
    tenant: TenantId,
    run: RunId,
    next_seq: u64,
    buffer: VecDeque<RunEvent>,
    changes: tokio::sync::watch::Receiver<u64>,
    done: bool,
}

impl Watcher {
    async fn next(mut self) -> Option<(Result<RunEvent>, Self)> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.next_seq = e.seq.saturating_add(1);
                if matches!(e.kind, RunEventKind::Finished { .. }) {
                    self.done = true;
                }
                return Some((Ok(e), self));
            }
            if self.done {
                return None;
            }
            // Mark the current version seen before reading, so no append is missed.
            self.changes.borrow_and_update();
            let read = {
                let mut state = self.store.lock();
                state.tenant(&self.tenant).runs.get(&self.run).map(|rec| {
                    let new: Vec<RunEvent> = rec
                        .events
                        .iter()
                        .filter(|e| e.seq >= self.next_seq)
                        .cloned()
                        .collect();
                    (new, rec.run.status.is_terminal())
                })
            };
            match read {
                None => {
                    self.done = true;
                    return Some((Err(kit::run_missing(&self.run)), self));
                }
                Some((new, terminal)) if new.is_empty() => {
                    if terminal {
                        return None;
                    }
                    if self.changes.changed().await.is_err() {
                        return None;
                    }
                }
                Some((new, _)) => self.buffer.extend(new),
            }
        }
    }
}
