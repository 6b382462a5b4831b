//! Group commit of run-log writes (P1 in docs/performance.md): starts, appends and
//! finishes from concurrent writers of this node share transactions, so one commit
//! (one WAL flush at `synchronous_commit = on`) stands for many calls. Every caller
//! still returns only after the transaction holding its write committed, with its
//! own answer.
//!
//! Writers queue their writes, then wait for a lane ([`LANES`]), or for their
//! answer, whichever comes first. A writer that gets a lane while its write is still
//! queued leads: it takes every write queued so far (up to [`MAX_BATCH`]) into a
//! task that holds the lane, runs them in one transaction on one connection (the
//! appends in one statement) and answers each writer. The next batch forms while
//! this one commits.
//!
//! None of these statements fails for a caller's own reason: a start of a taken id
//! and an append or finish of a run that is not running touch no row, and the caller
//! says why afterwards. Any failure is the batch's, and every writer in it hears of
//! it; a deadlock (two batches of one tenant meeting on shared counter rows) is
//! rolled back and the batch run again, since nothing of it was stored. Within a
//! batch, writes run in (tenant, run) order, arrival order within a run, so that two
//! batches take the run rows they share in the same order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use storage_ports::{Error, ErrorKind, NewRun, Result, Run, RunId, TenantId};
use tokio::sync::{oneshot, Semaphore};

use storage_ports::adapter_kit::errors::batch_failed;

use crate::error::SqlxResultExt;
use crate::PostgresStore;

/// Batches in flight at once on this node. One measured best (P1 quick, fsync on:
/// 1.68x the raw driver call by call with one, 1.57x with two, 0.91x with four): the
/// fewer batches at once, the more writes each takes, and a batch costs a few
/// round trips and one commit whatever its size.
const LANES: usize = 1;

/// The most writes one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// How often a batch chosen as a deadlock victim is run again.
const DEADLOCK_RETRIES: usize = 5;

/// One run-log write, its values already encoded.
#[derive(Debug)]
pub(crate) enum Write {
    Start(TenantId, NewRun),
    Append {
        tenant: TenantId,
        run: RunId,
        at: DateTime<Utc>,
        kind: String,
    },
    Finish {
        tenant: TenantId,
        run: RunId,
        status: &'static str,
        ended_at: DateTime<Utc>,
        output: Option<String>,
        error: Option<String>,
        kind: String,
    },
}

impl Write {
    fn key(&self) -> (&str, &str) {
        match self {
            Self::Start(t, new) => (t.as_str(), new.run_id.as_str()),
            Self::Append { tenant, run, .. } | Self::Finish { tenant, run, .. } => {
                (tenant.as_str(), run.as_str())
            }
        }
    }
}

/// What a write did; `None` when it touched no row (the caller says why).
#[derive(Debug)]
pub(crate) enum Answer {
    Started(Option<Run>),
    Appended(Option<u64>),
    Finished(Option<Run>),
}

#[derive(Debug)]
struct Slot {
    write: Mutex<Option<Write>>,
    reply: Mutex<Option<oneshot::Sender<Result<Answer>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writes waiting for a leader, and the lanes.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Mutex<VecDeque<Arc<Slot>>>,
    lanes: Arc<Semaphore>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            lanes: Arc::new(Semaphore::new(LANES)),
        }
    }
}

/// A deadlock or serialization failure (SQLSTATE class 40): the transaction lost a
/// race, stored nothing, and may win when run again.
fn lost_a_race(e: &Error) -> bool {
    e.kind() == ErrorKind::Backend && e.is_retryable() && e.message().contains("SQLSTATE 40")
}

impl PostgresStore {
    /// Runs `write` in a group commit; answers once it is committed.
    pub(crate) async fn group_write(&self, write: Write) -> Result<Answer> {
        let (tx, mut rx) = oneshot::channel();
        let slot = Arc::new(Slot {
            write: Mutex::new(Some(write)),
            reply: Mutex::new(Some(tx)),
        });
        let group = &self.group;
        lock(&group.queue).push_back(slot.clone());
        loop {
            let lane = tokio::select! {
                answer = &mut rx => {
                    return answer.unwrap_or_else(|_| Err(Error::unavailable(
                        "the group commit holding this write failed before it answered; the write may or may not be stored",
                    )));
                }
                lane = group.lanes.clone().acquire_owned() => lane,
            };
            let Ok(lane) = lane else {
                return Err(Error::unavailable("the group commit lanes are closed"));
            };
            if lock(&slot.write).is_none() {
                // Another leader has it; its answer comes on `rx`.
                drop(lane);
                return rx.await.unwrap_or_else(|_| {
                    Err(Error::unavailable(
                        "the group commit holding this write failed before it answered; the write may or may not be stored",
                    ))
                });
            }
            let batch: Vec<Arc<Slot>> = {
                let mut q = lock(&group.queue);
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            };
            let store = self.clone();
            // The task holds the lane and answers every writer of the batch, even if
            // this caller is cancelled meanwhile.
            tokio::spawn(async move {
                store.commit_batch(batch).await;
                drop(lane);
            });
        }
    }

    async fn commit_batch(&self, batch: Vec<Arc<Slot>>) {
        let mut writes: Vec<(Write, Arc<Slot>)> = batch
            .into_iter()
            .filter_map(|s| {
                let w = lock(&s.write).take();
                w.map(|w| (w, s))
            })
            .collect();
        // A stable sort: arrival order stays within a run.
        writes.sort_by(|a, b| a.0.key().cmp(&b.0.key()));
        let mut tries = 0;
        let answers = loop {
            match self.run_batch(&writes).await {
                Err(e) if lost_a_race(&e) && tries < DEADLOCK_RETRIES => tries += 1,
                other => break other,
            }
        };
        let answers: Vec<Result<Answer>> = match answers {
            Ok(a) => a.into_iter().map(Ok).collect(),
            Err(e) => writes
                .iter()
                .map(|_| Err(batch_failed(&e, "runs.group_commit")))
                .collect(),
        };
        for ((_, slot), answer) in writes.iter().zip(answers) {
            if let Some(reply) = lock(&slot.reply).take() {
                let _ = reply.send(answer);
            }
        }
    }

    /// The batch's writes in one transaction: the appends in one statement, the
    /// starts and finishes one statement each, so a batch costs a few round trips
    /// and one commit however many appends it holds.
    async fn run_batch(&self, writes: &[(Write, Arc<Slot>)]) -> Result<Vec<Answer>> {
        let mut tx = self.pool().begin().await.op("runs.group_commit")?;
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(writes.len());
        let mut appends = Vec::new();
        let mut at_index = Vec::new();
        for (i, (w, _)) in writes.iter().enumerate() {
            answers.push(match w {
                Write::Append {
                    tenant,
                    run,
                    at,
                    kind,
                } => {
                    appends.push((tenant, run, *at, kind.as_str()));
                    at_index.push(i);
                    None
                }
                Write::Start(t, new) => {
                    Some(match Self::start_in(&mut *tx, t, new.clone()).await {
                        Ok(run) => Answer::Started(Some(run)),
                        // ON CONFLICT DO NOTHING: a taken id wrote nothing.
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => Answer::Started(None),
                        Err(e) => return Err(e),
                    })
                }
                Write::Finish {
                    tenant,
                    run,
                    status,
                    ended_at,
                    output,
                    error,
                    kind,
                } => Some(Answer::Finished(
                    Self::finish_row(
                        &mut tx,
                        tenant,
                        run,
                        status,
                        *ended_at,
                        output.as_deref(),
                        error.as_deref(),
                        kind,
                    )
                    .await?,
                )),
            });
        }
        if !appends.is_empty() {
            let seqs = Self::append_rows(&mut tx, &appends).await?;
            for (i, seq) in at_index.into_iter().zip(seqs) {
                if let Some(a) = answers.get_mut(i) {
                    *a = Some(Answer::Appended(seq));
                }
            }
        }
        tx.commit().await.op("runs.group_commit")?;
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Answer::Appended(None)))
            .collect())
    }
}
