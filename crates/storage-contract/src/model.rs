//! The queue model test: random sequences of queue operations, run against an adapter
//! and against the memory adapter as the reference, comparing every observable result
//! (what enqueue answers, which jobs a dequeue leases and in what order, what
//! heartbeat, ack, fail and requeue answer, the stats and the dead letters).
//!
//! Time is part of the sequence: a [`QueueOp::Step`] moves the reference's clock by
//! [`STEP`]. A subject that reads a [`ManualClock`] (memory, SQLite) shares the
//! reference's clock, so a step takes no time. A subject on a server clock
//! (PostgreSQL, Redis) sleeps the step instead; the times are chosen so that nothing
//! is near a boundary: a short lease, delay or backoff ([`SHORT`]) ends well inside one
//! step and well after the operations between two steps, a long one never ends in a
//! case.
//!
//! Jobs are matched between the two by position: the subject's generated ids are
//! translated to the reference's, and leases are referred to by the order in which
//! they were handed out. A failure prints the shrunk sequence; keep it as a plain
//! regression test next to the adapter's model test.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use adapter_memory::{MemoryOptions, MemoryStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use storage_ports::{
    Backoff, Dequeue, Enqueued, ErrorKind, FailOutcome, JobFailure, JobId, JobQueue, Lease,
    LeasedJob, ManualClock, NewJob, QueueName, QueueStats, Result as StoreResult, TenantId,
    Timestamp,
};

use crate::servers::fresh_tenant;

/// How far one [`QueueOp::Step`] moves time.
pub const STEP: Duration = Duration::from_millis(1200);
/// A short lease, delay or retry backoff: over within one step.
pub const SHORT: Duration = Duration::from_millis(500);
/// How far the reference's clock moves before each operation.
pub const TICK: Duration = Duration::from_millis(1);
/// A long lease or delay: never over within a case.
pub const LONG: Duration = Duration::from_secs(600);

/// One operation of a sequence.
#[derive(Debug, Clone)]
pub enum QueueOp {
    /// Enqueue `count` jobs in one batch.
    Enqueue {
        /// Jobs in the batch.
        count: usize,
        /// Their priority.
        priority: i32,
        /// Their delay: none, [`SHORT`] or [`LONG`].
        delay: Option<bool>,
        /// Their attempts limit.
        max_attempts: u32,
        /// A deduplication key (one of two), or none.
        dedup: Option<u8>,
        /// Whether the caller names the ids (else the backend generates them).
        named: bool,
    },
    /// Dequeue up to `max` jobs with a short or a long lease.
    Dequeue {
        /// Batch size.
        max: usize,
        /// Short lease (else long).
        short: bool,
    },
    /// Heartbeat the `lease`-th lease handed out (modulo their number).
    Heartbeat {
        /// Which lease.
        lease: usize,
        /// Extend by a short time (else long).
        short: bool,
    },
    /// Ack these leases in one batch.
    Ack {
        /// Which leases.
        leases: Vec<usize>,
    },
    /// Fail a lease.
    Fail {
        /// Which lease.
        lease: usize,
        /// Ask for a retry.
        retry: bool,
    },
    /// Requeue the `job`-th job enqueued.
    Requeue {
        /// Which job.
        job: usize,
    },
    /// Compare the stats.
    Stats,
    /// Compare the dead letters.
    Dead,
    /// Move time by [`STEP`].
    Step,
}

/// Sequences of up to `len` operations, with few steps.
pub fn queue_ops(len: usize) -> impl Strategy<Value = Vec<QueueOp>> {
    let op = prop_oneof![
        4 => (1..=3_usize, 0..3_i32, prop::option::of(any::<bool>()), 1..=3_u32, prop::option::weighted(0.3, 0..2_u8), any::<bool>())
            .prop_map(|(count, priority, delay, max_attempts, dedup, named)| QueueOp::Enqueue { count, priority, delay, max_attempts, dedup, named }),
        4 => (1..=3_usize, any::<bool>()).prop_map(|(max, short)| QueueOp::Dequeue { max, short }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(lease, short)| QueueOp::Heartbeat { lease, short }),
        2 => prop::collection::vec(any::<usize>(), 1..3).prop_map(|leases| QueueOp::Ack { leases }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(lease, retry)| QueueOp::Fail { lease, retry }),
        1 => any::<usize>().prop_map(|job| QueueOp::Requeue { job }),
        1 => Just(QueueOp::Stats),
        1 => Just(QueueOp::Dead),
        1 => Just(QueueOp::Step),
    ];
    prop::collection::vec(op, 1..len).prop_filter("at most three steps", |ops| {
        ops.iter().filter(|o| matches!(o, QueueOp::Step)).count() <= 3
    })
}

/// Shrunk sequences that once made a subject and the reference differ, replayed first
/// on every adapter.
#[must_use]
pub fn regressions() -> Vec<Vec<QueueOp>> {
    let one = |priority| QueueOp::Enqueue {
        count: 1,
        priority,
        delay: None,
        max_attempts: 1,
        dedup: None,
        named: false,
    };
    let keyed = |count| QueueOp::Enqueue {
        count,
        priority: 0,
        delay: None,
        max_attempts: 1,
        dedup: Some(1),
        named: false,
    };
    vec![
        // Two jobs of one batch carry the key of a pending job: both are deduplicated
        // onto it (PostgreSQL returned the batch's first job, never stored).
        vec![keyed(1), keyed(2)],
        // A lease named twice in one ack batch acks once (PostgreSQL acked it twice).
        vec![
            one(0),
            QueueOp::Dequeue {
                max: 1,
                short: false,
            },
            QueueOp::Ack { leases: vec![0, 0] },
        ],
        // A requeued job is due from the requeue, so a job enqueued before it goes
        // first at equal priority (the reference's clock did not move between calls).
        vec![
            one(2),
            QueueOp::Dequeue {
                max: 1,
                short: false,
            },
            one(2),
            QueueOp::Fail {
                lease: 0,
                retry: true,
            },
            QueueOp::Requeue { job: 0 },
            QueueOp::Dequeue {
                max: 2,
                short: true,
            },
        ],
    ]
}

/// How the subject's time moves when the reference's does.
#[derive(Debug, Clone)]
pub enum SubjectTime {
    /// The subject reads this clock, which the reference shares.
    Manual(ManualClock),
    /// The subject reads a real clock (its server's): a step is a sleep.
    Real,
}

/// Runs `cases` random sequences against `subject`, on `rt`; each case on a fresh
/// tenant and queue, against a fresh reference. `FLOWSTORE_MODEL_CASES` overrides
/// `cases`, for a longer hunt by hand.
///
/// # Errors
/// The shrunk sequence that made the subject and the reference differ, and where.
pub fn check_queue_model(
    rt: &tokio::runtime::Runtime,
    subject: &dyn JobQueue,
    time: &SubjectTime,
    cases: u32,
) -> Result<(), String> {
    for (i, ops) in regressions().iter().enumerate() {
        rt.block_on(run_case(subject, time, ops))
            .map_err(|e| format!("regression sequence {i}: {e}"))?;
    }
    let cases = std::env::var("FLOWSTORE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    runner
        .run(&queue_ops(24), |ops| {
            rt.block_on(run_case(subject, time, &ops))
                .map_err(TestCaseError::fail)
        })
        .map_err(|e| format!("{e}"))
}

/// One sequence against a fresh tenant; `Err` says which step differed.
///
/// # Errors
/// Where the subject and the reference differ.
pub async fn run_case(
    subject: &dyn JobQueue,
    time: &SubjectTime,
    ops: &[QueueOp],
) -> Result<(), String> {
    let clock = match time {
        SubjectTime::Manual(c) => c.clone(),
        SubjectTime::Real => ManualClock::at(Timestamp::now()),
    };
    let reference =
        MemoryStore::new(MemoryOptions::default().with_clock(std::sync::Arc::new(clock.clone())));
    let tenant = fresh_tenant().map_err(|e| e.to_string())?;
    let mut case = Case {
        tenant,
        queue: QueueName::new("model").map_err(|e| e.to_string())?,
        reference: &reference,
        subject,
        ids: Vec::new(),
        to_reference: HashMap::new(),
        leases: Vec::new(),
        named: 0,
        log: String::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        // Real time moves between two calls; so does the reference's, by a tick, so
        // that times taken by successive calls (enqueue, requeue, retry) are ordered
        // the same on both sides.
        clock.advance(TICK);
        let _ = writeln!(case.log, "{i}: {op:?}");
        case.apply(op, time, &clock)
            .await
            .map_err(|e| format!("{e}\nafter:\n{}", case.log))?;
    }
    Ok(())
}

/// One case's state: both queues, and how the subject's names map to the reference's.
struct Case<'a> {
    tenant: TenantId,
    queue: QueueName,
    reference: &'a MemoryStore,
    subject: &'a dyn JobQueue,
    /// Every job enqueued, as (reference id, subject id).
    ids: Vec<(JobId, JobId)>,
    to_reference: HashMap<JobId, JobId>,
    /// Every lease handed out, as (reference lease, subject lease).
    leases: Vec<(Lease, Lease)>,
    named: usize,
    log: String,
}

/// What a result looks like once tokens, times and generated ids are set aside.
fn kind_of<T>(r: &StoreResult<T>) -> Option<ErrorKind> {
    r.as_ref().err().map(storage_ports::Error::kind)
}

impl Case<'_> {
    async fn apply(
        &mut self,
        op: &QueueOp,
        time: &SubjectTime,
        clock: &ManualClock,
    ) -> Result<(), String> {
        let (t, q) = (&self.tenant.clone(), &self.queue.clone());
        match op {
            QueueOp::Enqueue {
                count,
                priority,
                delay,
                max_attempts,
                dedup,
                named,
            } => {
                let mut pairs = Vec::new();
                for k in 0..*count {
                    let mut job = NewJob::new(json!({ "k": k, "n": self.ids.len() }))
                        .with_priority(*priority)
                        .with_max_attempts(*max_attempts)
                        .with_backoff(Backoff {
                            base_ms: u64::try_from(SHORT.as_millis()).unwrap_or(500),
                            cap_ms: u64::try_from(SHORT.as_millis()).unwrap_or(500),
                        });
                    if let Some(short) = delay {
                        job = job.with_delay(if *short { SHORT } else { LONG });
                    }
                    if let Some(d) = dedup {
                        job = job.with_dedup_key(format!("key-{d}"));
                    }
                    let (r, s) = if *named {
                        self.named += 1;
                        let id = JobId::new(format!("named-{}", self.named))
                            .map_err(|e| e.to_string())?;
                        (job.clone().with_id(id.clone()), job.with_id(id))
                    } else {
                        (job.clone(), job)
                    };
                    pairs.push((r, s));
                }
                let (r_jobs, s_jobs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
                let r = self
                    .reference
                    .enqueue_batch(t, q, r_jobs)
                    .await
                    .map_err(|e| format!("reference enqueue failed: {e}"))?;
                let s = self
                    .subject
                    .enqueue_batch(t, q, s_jobs)
                    .await
                    .map_err(|e| format!("subject enqueue failed: {e}"))?;
                if r.len() != s.len() {
                    return Err(format!("enqueue: {} results vs {}", r.len(), s.len()));
                }
                for (r, s) in r.iter().zip(&s) {
                    self.compare_enqueued(r, s)?;
                }
            }
            QueueOp::Dequeue { max, short } => {
                let lease = if *short { SHORT } else { LONG };
                let r = self
                    .reference
                    .dequeue(t, q, Dequeue::batch(*max, lease))
                    .await
                    .map_err(|e| format!("reference dequeue failed: {e}"))?;
                let s = self
                    .subject
                    .dequeue(t, q, Dequeue::batch(*max, lease))
                    .await
                    .map_err(|e| format!("subject dequeue failed: {e}"))?;
                let seen = |jobs: &[LeasedJob], map: &dyn Fn(&JobId) -> JobId| {
                    jobs.iter()
                        .map(|j| {
                            (
                                map(&j.lease.job_id),
                                j.attempt,
                                j.priority,
                                j.max_attempts,
                                j.payload.clone(),
                            )
                        })
                        .collect::<Vec<_>>()
                };
                let want = seen(&r, &|id| id.clone());
                let got = seen(&s, &|id| self.reference_id(id));
                if want != got {
                    return Err(format!(
                        "dequeue: reference leased {want:?}, subject {got:?}"
                    ));
                }
                self.leases.extend(
                    r.into_iter()
                        .map(|j| j.lease)
                        .zip(s.into_iter().map(|j| j.lease)),
                );
            }
            QueueOp::Heartbeat { lease, short } => {
                let Some((rl, sl)) = self.lease(*lease) else {
                    return Ok(());
                };
                let by = if *short { SHORT } else { LONG };
                let r = self.reference.heartbeat(t, &rl, by).await;
                let s = self.subject.heartbeat(t, &sl, by).await;
                if kind_of(&r) != kind_of(&s) {
                    return Err(format!("heartbeat: reference {r:?}, subject {s:?}"));
                }
                if let (Ok(r), Ok(s)) = (r, s) {
                    self.leases.push((r, s));
                }
            }
            QueueOp::Ack { leases } => {
                let picked: Vec<(Lease, Lease)> =
                    leases.iter().filter_map(|i| self.lease(*i)).collect();
                if picked.is_empty() {
                    return Ok(());
                }
                let (rl, sl): (Vec<_>, Vec<_>) = picked.into_iter().unzip();
                let r = self
                    .reference
                    .ack_batch(t, &rl)
                    .await
                    .map_err(|e| format!("reference ack failed: {e}"))?;
                let s = self
                    .subject
                    .ack_batch(t, &sl)
                    .await
                    .map_err(|e| format!("subject ack failed: {e}"))?;
                let rk: Vec<_> = r.iter().map(kind_of).collect();
                let sk: Vec<_> = s.iter().map(kind_of).collect();
                if rk != sk {
                    return Err(format!("ack: reference {rk:?}, subject {sk:?}"));
                }
            }
            QueueOp::Fail { lease, retry } => {
                let Some((rl, sl)) = self.lease(*lease) else {
                    return Ok(());
                };
                let failure = JobFailure {
                    error: "model".into(),
                    retry: *retry,
                };
                let r = self.reference.fail(t, &rl, failure.clone()).await;
                let s = self.subject.fail(t, &sl, failure).await;
                let shape = |o: &StoreResult<FailOutcome>| match o {
                    Ok(FailOutcome::Retrying { .. }) => Ok("retrying"),
                    Ok(FailOutcome::Dead) => Ok("dead"),
                    Err(e) => Err(e.kind()),
                };
                if shape(&r) != shape(&s) {
                    return Err(format!("fail: reference {r:?}, subject {s:?}"));
                }
            }
            QueueOp::Requeue { job } => {
                if self.ids.is_empty() {
                    return Ok(());
                }
                let (rid, sid) = self.ids[job % self.ids.len()].clone();
                let r = self.reference.requeue(t, q, &rid).await;
                let s = self.subject.requeue(t, q, &sid).await;
                if kind_of(&r) != kind_of(&s) {
                    return Err(format!("requeue: reference {r:?}, subject {s:?}"));
                }
            }
            QueueOp::Stats => {
                let r = self.reference.stats(t, q).await;
                let s = self.subject.stats(t, q).await;
                let plain = |x: StoreResult<QueueStats>| x.map_err(|e| e.kind());
                let (r, s) = (plain(r), plain(s));
                if r != s {
                    return Err(format!("stats: reference {r:?}, subject {s:?}"));
                }
            }
            QueueOp::Dead => {
                let r = self
                    .reference
                    .dead(t, q, 100)
                    .await
                    .map_err(|e| format!("reference dead failed: {e}"))?;
                let s = self
                    .subject
                    .dead(t, q, 100)
                    .await
                    .map_err(|e| format!("subject dead failed: {e}"))?;
                // Deaths at one instant of the reference's clock are apart on a real
                // one, so the order is compared by id.
                let mut want: Vec<_> = r
                    .iter()
                    .map(|d| (d.job_id.clone(), d.attempts, d.last_error.clone()))
                    .collect();
                let mut got: Vec<_> = s
                    .iter()
                    .map(|d| {
                        (
                            self.reference_id(&d.job_id),
                            d.attempts,
                            d.last_error.clone(),
                        )
                    })
                    .collect();
                want.sort();
                got.sort();
                if want != got {
                    return Err(format!("dead: reference {want:?}, subject {got:?}"));
                }
            }
            QueueOp::Step => {
                clock.advance(STEP);
                if matches!(time, SubjectTime::Real) {
                    tokio::time::sleep(STEP).await;
                }
            }
        }
        Ok(())
    }

    fn lease(&self, i: usize) -> Option<(Lease, Lease)> {
        (!self.leases.is_empty()).then(|| self.leases[i % self.leases.len()].clone())
    }

    fn reference_id(&self, subject: &JobId) -> JobId {
        self.to_reference
            .get(subject)
            .cloned()
            .unwrap_or_else(|| subject.clone())
    }

    fn compare_enqueued(
        &mut self,
        r: &StoreResult<Enqueued>,
        s: &StoreResult<Enqueued>,
    ) -> Result<(), String> {
        match (r, s) {
            (Ok(r), Ok(s)) => {
                if r.deduplicated != s.deduplicated {
                    return Err(format!("enqueue: reference {r:?}, subject {s:?}"));
                }
                if r.deduplicated {
                    if self.reference_id(&s.job_id) != r.job_id {
                        return Err(format!(
                            "enqueue deduplicated onto different jobs: reference {r:?}, subject {s:?}"
                        ));
                    }
                } else {
                    self.to_reference.insert(s.job_id.clone(), r.job_id.clone());
                    self.ids.push((r.job_id.clone(), s.job_id.clone()));
                }
                Ok(())
            }
            (r, s) if kind_of(r) == kind_of(s) => Ok(()),
            (r, s) => Err(format!("enqueue: reference {r:?}, subject {s:?}")),
        }
    }
}
