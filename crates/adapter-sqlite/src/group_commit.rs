//! Group commit of run-log writes (P1 in docs/performance.md): starts, appends and
//! finishes from concurrent writers of this process share one transaction, so one
//! commit (and, at `synchronous: full`, one fsync) stands for many calls. Every
//! caller still returns only after the transaction holding its write committed, and
//! gets its own answer: a write refused for its own reason (a run that is not
//! running, an id taken) is refused by its first statement, before it wrote
//! anything, so the rest of the batch goes on; any other failure fails the batch,
//! and every writer in it hears of it.
//!
//! Writers queue their writes, then wait for the write gate in turn. The first to
//! get it (the leader) takes every write queued so far, its own among them, runs
//! them in one transaction, commits, and leaves each writer its answer; a writer that
//! gets the gate and finds its answer waiting returns it at once. Nobody waits for a
//! batch to fill: a lone writer commits alone, and batches grow only while a commit
//! is already under way (the leader-follower scheme of LevelDB's writer queue).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::{Sqlite, Transaction};
use storage_ports::{
    CompleteRun, Error, ErrorKind, Result, Run, RunId, RunOutcome, RunStep, TenantId,
};

use storage_ports::adapter_kit::errors::batch_failed;

use crate::error::SqlxResultExt;
use crate::SqliteStore;

/// The most writes one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// One run-log write.
#[derive(Debug)]
pub(crate) enum Write {
    Start(TenantId, Run),
    Append(TenantId, RunId, RunStep),
    Finish(TenantId, RunId, RunOutcome),
}

impl Write {
    fn run(&self) -> (&TenantId, &RunId) {
        match self {
            Self::Start(t, r) => (t, &r.run_id),
            Self::Append(t, r, _) | Self::Finish(t, r, _) => (t, r),
        }
    }
}

/// What a write answers: the sequence number an append took.
pub(crate) type Written = u64;

#[derive(Debug)]
struct Slot {
    write: Mutex<Option<Write>>,
    answer: Mutex<Option<Result<Written>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writes waiting for a leader.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<VecDeque<Arc<Slot>>>,
}

impl SqliteStore {
    /// Runs `write` in a group commit; answers once it is committed.
    pub(crate) async fn group_write(&self, write: Write) -> Result<Written> {
        let slot = Arc::new(Slot {
            write: Mutex::new(Some(write)),
            answer: Mutex::new(None),
        });
        lock(&self.group.queue).push_back(slot.clone());
        let mut gate = self.write_gate().await;
        loop {
            if let Some(answer) = lock(&slot.answer).take() {
                return answer;
            }
            if lock(&slot.write).is_none() {
                // Taken by a batch that never answered: its task failed.
                return Err(Error::unavailable(
                    "the group commit holding this write failed before it answered; the write may or may not be stored",
                ));
            }
            // This writer leads: its own write is queued, at most MAX_BATCH from the
            // front, so it is answered within a few batches at worst. The batch runs
            // in a task of its own that holds the gate, so it finishes and answers
            // every writer in it even if this caller is cancelled meanwhile.
            let batch: Vec<Arc<Slot>> = {
                let mut q = lock(&self.group.queue);
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            };
            let store = self.clone();
            let task = tokio::spawn(async move {
                store.commit_batch(&batch).await;
                gate
            });
            gate = match task.await {
                Ok(gate) => gate,
                Err(e) => return Err(Error::backend(format!("a group commit failed: {e}"))),
            };
        }
    }

    /// One transaction for `batch`; every slot answered.
    async fn commit_batch(&self, batch: &[Arc<Slot>]) {
        let writes: Vec<Write> = batch.iter().filter_map(|s| lock(&s.write).take()).collect();
        let answered = match self.run_batch(&writes).await {
            Ok(answers) => answers,
            Err(e) => writes
                .iter()
                .map(|_| Err(batch_failed(&e, "runs.group_commit")))
                .collect(),
        };
        for ((slot, write), answer) in batch.iter().zip(&writes).zip(answered) {
            if answer.is_ok() {
                let (t, r) = write.run();
                self.run_wakes.notify_run(t, r);
            }
            *lock(&slot.answer) = Some(answer);
        }
    }

    /// The batch's writes in one transaction: their own answers, or the failure that
    /// stopped the transaction.
    async fn run_batch(&self, writes: &[Write]) -> Result<Vec<Result<Written>>> {
        let mut tx = self.write_tx().await.op("runs.group_commit")?;
        let mut answers = Vec::with_capacity(writes.len());
        for w in writes {
            // No savepoint is needed: a write refused for its own reason (not
            // running, unknown, an id taken) is refused by its first statement,
            // before it wrote anything, and leaves the transaction as it was.
            match self.apply(&mut tx, w).await {
                Ok(seq) => answers.push(Ok(seq)),
                Err(e) if answers_alone(&e) => answers.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        tx.commit().await.op("runs.group_commit")?;
        Ok(answers)
    }
}

/// A write refused for its own reasons leaves the transaction as it was, for the
/// rest of the batch; anything else stops the batch.
fn answers_alone(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::PreconditionFailed
            | ErrorKind::Immutable
            | ErrorKind::InvalidInput
    )
}

impl SqliteStore {
    /// One write, inside the batch's transaction.
    async fn apply(&self, tx: &mut Transaction<'_, Sqlite>, w: &Write) -> Result<Written> {
        match w {
            Write::Start(t, run) => {
                // A run just started is a complete run with no steps: its log is the
                // Started event.
                let started = CompleteRun {
                    run: run.clone(),
                    steps: Vec::new(),
                };
                Self::write_complete(tx, t, &started).await?;
                Ok(1)
            }
            Write::Append(t, run, step) => self.append_in(tx, t, run, step).await,
            Write::Finish(t, run, outcome) => self.finish_in(tx, t, run, outcome).await,
        }
    }
}
