//! The job queue in memory (Q1-Q10).
//!
//! Leases are checked against the clock at every read: a job whose lease has expired
//! is ready again, and its next delivery raises the attempt count. Fencing tokens come
//! from one counter, so a token is never current for two leases.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::lease::{takeback_limit, KeyLimits};
use storage_ports::JobTransfer;
use storage_ports::{
    CancelOutcome, DeadJob, DeadState, Dequeue, Enqueued, Error, ExportedJob, FailOutcome,
    HistoryQuery, JobFailure, JobId, JobInfo, JobQueue, JobStatus, Lease, LeasedJob, NewJob, Page,
    QueueName, QueueStats, Result, TenantId, Timestamp,
};

use crate::state::{Job, JobState, State};
use crate::MemoryStore;

/// Whether a job can be delivered at `now`.
fn is_ready(job: &Job, now: Timestamp) -> bool {
    match job.state {
        JobState::Ready => job.run_at <= now,
        JobState::Leased { expires_at, .. } => expires_at <= now,
        _ => false,
    }
}

/// What `job` and `history` show of a stored job.
fn info_of(queue: &QueueName, id: &JobId, j: &Job, now: Timestamp) -> JobInfo {
    let status = match j.state {
        JobState::Ready if j.run_at > now => JobStatus::Scheduled,
        JobState::Ready => JobStatus::Pending,
        JobState::Leased { expires_at, .. } if expires_at > now => JobStatus::Running,
        JobState::Leased { .. } => JobStatus::Pending,
        JobState::Dead { .. } => JobStatus::Dead,
        JobState::Completed { .. } => JobStatus::Completed,
        JobState::Cancelled { .. } => JobStatus::Cancelled,
    };
    JobInfo {
        queue: queue.clone(),
        job_id: id.clone(),
        status,
        payload: j.spec.payload.clone(),
        priority: j.spec.priority,
        attempts: j.attempts,
        max_attempts: j.spec.max_attempts,
        enqueued_at: j.enqueued_at,
        finished_at: j.state.finished_at(),
        progress: j.progress.clone(),
        output: j.output.clone(),
        last_error: j.last_error.clone(),
        cancel_requested: j.cancel_requested,
        scheduled_for: (status == JobStatus::Scheduled).then_some(j.run_at),
        lease_expires_at: lease_expiry(j).filter(|_| status == JobStatus::Running),
    }
}

/// Whether a finished job's `keep_for` has passed at `now`.
fn lease_expiry(j: &Job) -> Option<Timestamp> {
    match j.state {
        JobState::Leased { expires_at, .. } => Some(expires_at),
        _ => None,
    }
}

fn expired(j: &Job, now: Timestamp) -> bool {
    j.state.finished_at().is_some_and(|at| {
        storage_ports::queue::keep_until(at, j.spec.keep_for_micros())
            .is_some_and(|until| until <= now.as_micros())
    })
}

impl MemoryStore {
    /// Enqueues under an already held lock (shared with transactions).
    pub(crate) fn enqueue_locked(
        state: &mut State,
        tenant: &TenantId,
        queue: &QueueName,
        job: NewJob,
        now: Timestamp,
    ) -> Result<Enqueued> {
        let seq = state.next_job_seq;
        let jobs = &mut state.tenant(tenant).jobs;
        if let Some(key) = &job.dedup_key {
            let since = now.as_micros().saturating_sub(job.unique_for_micros());
            let counts = |j: &Job| match j.state {
                JobState::Ready | JobState::Leased { .. } => true,
                JobState::Completed { at } | JobState::Dead { died_at: at, .. } => {
                    job.unique_for.is_some() && at.as_micros() >= since
                }
                JobState::Cancelled { .. } => false,
            };
            let first = jobs
                .iter()
                .filter(|((q, _), j)| q == queue && j.spec.dedup_key.as_ref() == Some(key))
                .filter(|(_, j)| counts(j))
                .max_by_key(|(_, j)| (j.state.is_live(), j.state.finished_at()));
            if let Some(((_, id), _)) = first {
                return Ok(Enqueued {
                    job_id: id.clone(),
                    deduplicated: true,
                });
            }
        }
        let id = job.id.clone().unwrap_or_else(JobId::generate);
        let k = (queue.clone(), id.clone());
        if jobs.contains_key(&k) {
            return Err(kit::job_taken(&id, queue));
        }
        let mut spec = job;
        spec.id = Some(id.clone());
        jobs.insert(
            k,
            Job {
                run_at: spec.due_at(now),
                spec,
                enqueued_at: now,
                seq,
                attempts: 0,
                last_error: None,
                state: JobState::Ready,
                progress: None,
                output: None,
                cancel_requested: false,
            },
        );
        state.next_job_seq += 1;
        Ok(Enqueued {
            job_id: id,
            deduplicated: false,
        })
    }

    /// The job a lease names, if the lease is current. A job whose cancel was asked
    /// for is finished as cancelled here, and the holder told so (Q14).
    fn leased_job<'s>(
        state: &'s mut State,
        tenant: &TenantId,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<&'s mut Job> {
        let job = state
            .tenant(tenant)
            .jobs
            .get_mut(&(lease.queue.clone(), lease.job_id.clone()))
            .ok_or_else(|| lease.stale())?;
        match job.state {
            JobState::Leased { token, .. } if token == lease.token => {
                if job.cancel_requested {
                    job.state = JobState::Cancelled { at: now };
                    return Err(storage_ports::queue::cancelled_error(&lease.job_id));
                }
                Ok(job)
            }
            _ => Err(lease.stale()),
        }
    }

    /// Acknowledges one lease: a job with `keep_for` goes to the history with its
    /// output, any other is deleted.
    fn ack_locked(
        state: &mut State,
        tenant: &TenantId,
        lease: &Lease,
        output: Option<Value>,
        now: Timestamp,
    ) -> Result<()> {
        let job = Self::leased_job(state, tenant, lease, now)?;
        if job.spec.keep_for_micros().is_some() {
            job.state = JobState::Completed { at: now };
            job.output = output;
        } else {
            state
                .tenant(tenant)
                .jobs
                .remove(&(lease.queue.clone(), lease.job_id.clone()));
        }
        Ok(())
    }
}

#[async_trait]
impl JobQueue for MemoryStore {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        let checked: Vec<Result<NewJob>> = jobs
            .into_iter()
            .map(|j| self.limit().check_job(&j).map(|()| j))
            .collect();
        let now = self.now();
        let out = {
            let mut state = self.lock();
            checked
                .into_iter()
                .map(|j| j.and_then(|j| Self::enqueue_locked(&mut state, tenant, queue, j, now)))
                .collect()
        };
        self.notify_queue();
        Ok(out)
    }

    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        req.validate()?;
        let now = self.now();
        let mut state = self.lock();
        if state.tenant(tenant).paused.contains(queue) {
            return Ok(Vec::new());
        }
        let mut token = state.next_token;
        let jobs = &mut state.tenant(tenant).jobs;
        // The rule every adapter follows (storage_ports::rules::lease): the oldest
        // `takeback_limit` expired leases are taken; last attempts among them die, the
        // others compete with the ready jobs.
        let mut expired: Vec<(Timestamp, JobId)> = jobs
            .iter()
            .filter(|((q, _), _)| q == queue)
            .filter_map(|((_, id), j)| match j.state {
                JobState::Leased { expires_at, .. } if expires_at <= now => {
                    Some((expires_at, id.clone()))
                }
                _ => None,
            })
            .collect();
        expired.sort();
        expired.truncate(takeback_limit(req.max));
        let mut taken_back = HashSet::new();
        for (_, id) in expired {
            let Some(job) = jobs.get_mut(&(queue.clone(), id.clone())) else {
                continue;
            };
            if job.cancel_requested {
                // A cancelled job is never delivered again (Q14).
                job.state = JobState::Cancelled { at: now };
            } else if job.attempts >= job.spec.max_attempts {
                let error = format!(
                    "lease expired on attempt {} of {}",
                    job.attempts, job.spec.max_attempts
                );
                job.last_error = Some(error.clone());
                job.state = JobState::Dead {
                    error,
                    died_at: now,
                };
            } else {
                taken_back.insert(id);
            }
        }
        // With limits (Q18): the running jobs per concurrency key and in all.
        let mut limits = req.is_limited().then(|| {
            let mut running: HashMap<String, u64> = HashMap::new();
            let mut total = 0_u64;
            for ((q, _), j) in jobs.iter() {
                if q == queue
                    && matches!(j.state, JobState::Leased { expires_at, .. } if expires_at > now)
                {
                    total += 1;
                    if let Some(k) = &j.spec.concurrency_key {
                        *running.entry(k.clone()).or_default() += 1;
                    }
                }
            }
            KeyLimits::new(&req, running, total)
        });
        let mut ready: Vec<(&JobId, &mut Job)> = jobs
            .iter_mut()
            .filter(|((q, id), j)| {
                q == queue
                    && match j.state {
                        JobState::Ready => j.run_at <= now,
                        JobState::Leased { .. } => taken_back.contains(id),
                        _ => false,
                    }
            })
            .map(|((_, id), j)| (id, j))
            .collect();
        let order = |j: &Job| (-i64::from(j.spec.priority), j.run_at, j.seq);
        ready.sort_by_key(|(_, j)| order(j));
        let expires_at = now.plus(req.lease_for);
        let mut out = Vec::new();
        let ready = ready
            .into_iter()
            .filter(|(_, j)| {
                limits
                    .as_mut()
                    .is_none_or(|l| l.admit(j.spec.concurrency_key.as_deref()))
            })
            .take(req.max);
        for (job_id, job) in ready {
            token += 1;
            job.attempts += 1;
            job.state = JobState::Leased { token, expires_at };
            out.push(LeasedJob {
                lease: Lease {
                    queue: queue.clone(),
                    job_id: job_id.clone(),
                    token,
                    expires_at,
                },
                payload: job.spec.payload.clone(),
                priority: job.spec.priority,
                attempt: job.attempts,
                max_attempts: job.spec.max_attempts,
                enqueued_at: job.enqueued_at,
            });
        }
        state.next_token = token;
        Ok(out)
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        let mut state = self.lock();
        let job = Self::leased_job(&mut state, tenant, lease, self.now())?;
        let expires_at = self.now().plus(extend_by);
        job.state = JobState::Leased {
            token: lease.token,
            expires_at,
        };
        Ok(Lease {
            expires_at,
            ..lease.clone()
        })
    }

    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        let now = self.now();
        let mut state = self.lock();
        Ok(leases
            .iter()
            .map(|lease| Self::ack_locked(&mut state, tenant, lease, None, now))
            .collect())
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome> {
        self.limit().check_failure(&failure)?;
        let outcome = {
            let mut state = self.lock();
            let now = self.now();
            let job = Self::leased_job(&mut state, tenant, lease, now)?;
            job.last_error = Some(failure.error.clone());
            if failure.retry && job.attempts < job.spec.max_attempts {
                let at = now.plus(job.spec.backoff.delay_after(job.attempts));
                job.run_at = at;
                job.state = JobState::Ready;
                FailOutcome::Retrying { at }
            } else {
                job.state = JobState::Dead {
                    error: failure.error,
                    died_at: now,
                };
                FailOutcome::Dead
            }
        };
        self.notify_queue();
        Ok(outcome)
    }

    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        let mut state = self.lock();
        let mut out: Vec<DeadJob> = state
            .tenant(tenant)
            .jobs
            .iter()
            .filter(|((q, _), _)| q == queue)
            .filter_map(|((_, id), j)| match &j.state {
                JobState::Dead { error, died_at } => Some(DeadJob {
                    job_id: id.clone(),
                    payload: j.spec.payload.clone(),
                    attempts: j.attempts,
                    last_error: error.clone(),
                    died_at: *died_at,
                }),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| (a.died_at, &a.job_id).cmp(&(b.died_at, &b.job_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        {
            let mut state = self.lock();
            let j = state
                .tenant(tenant)
                .jobs
                .get_mut(&(queue.clone(), job.clone()))
                .filter(|j| matches!(j.state, JobState::Dead { .. }))
                .ok_or_else(|| Error::not_found(format!("no dead job {job} in queue {queue}")))?;
            j.attempts = 0;
            j.run_at = self.now();
            j.state = JobState::Ready;
        }
        self.notify_queue();
        Ok(())
    }

    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        let now = self.now();
        let mut state = self.lock();
        let mut s = QueueStats {
            paused: state.tenant(tenant).paused.contains(queue),
            ..QueueStats::default()
        };
        for ((q, _), j) in &state.tenant(tenant).jobs {
            if q != queue {
                continue;
            }
            match j.state {
                JobState::Dead { .. } => s.dead += 1,
                JobState::Completed { .. } => s.completed += 1,
                JobState::Cancelled { .. } => s.cancelled += 1,
                JobState::Leased { expires_at, .. } if expires_at > now => s.running += 1,
                JobState::Ready if j.run_at > now => s.scheduled += 1,
                _ => s.pending += 1,
            }
        }
        Ok(s)
    }

    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.inner.queue_changed.subscribe();
        loop {
            changes.borrow_and_update();
            // The earliest time something becomes ready, if nothing is ready now.
            let now = self.now();
            let next = {
                let mut state = self.lock();
                let mut next: Option<Timestamp> = None;
                // A paused queue has nothing to wake for until it is resumed.
                let paused = state.tenant(tenant).paused.contains(queue);
                for ((q, _), j) in state.tenant(tenant).jobs.iter().filter(|_| !paused) {
                    if q != queue {
                        continue;
                    }
                    if is_ready(j, now) {
                        return Ok(true);
                    }
                    let at = match j.state {
                        JobState::Ready => Some(j.run_at),
                        JobState::Leased { expires_at, .. } => Some(expires_at),
                        _ => None,
                    };
                    next = match (next, at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                next
            };
            let wake = next.map_or(deadline, |t| tokio::time::Instant::now() + t.since(now));
            let until = wake.min(deadline);
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(false),
                Err(_) if until >= deadline => return Ok(false),
                Err(_) => {}
            }
        }
    }

    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<storage_ports::AckedAndLeased> {
        // In memory there is no round trip to save.
        storage_ports::queue::ack_then_dequeue(self, tenant, done, queue, next).await
    }

    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        self.lock().tenant(tenant).paused.insert(queue.clone());
        Ok(())
    }

    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        self.lock().tenant(tenant).paused.remove(queue);
        self.notify_queue();
        Ok(())
    }

    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp> {
        storage_ports::queue::check_snooze(delay)?;
        let at = {
            let mut state = self.lock();
            let job = Self::leased_job(&mut state, tenant, lease, self.now())?;
            let at = self.now().plus(delay);
            // The attempt the lease took is given back.
            job.attempts = job.attempts.saturating_sub(1);
            job.run_at = at;
            job.state = JobState::Ready;
            at
        };
        self.notify_queue();
        Ok(at)
    }

    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome> {
        let now = self.now();
        let outcome = {
            let mut state = self.lock();
            let j = state
                .tenant(tenant)
                .jobs
                .get_mut(&(queue.clone(), job.clone()))
                .ok_or_else(|| Error::not_found(format!("no job {job} in queue {queue}")))?;
            match j.state {
                JobState::Ready => {
                    j.state = JobState::Cancelled { at: now };
                    CancelOutcome::Cancelled
                }
                JobState::Leased { .. } => {
                    j.cancel_requested = true;
                    CancelOutcome::Requested
                }
                _ => {
                    let status = info_of(queue, job, j, now).status;
                    return Err(storage_ports::queue::finished_error(job, status.as_str()));
                }
            }
        };
        self.notify_queue();
        Ok(outcome)
    }

    async fn progress(&self, tenant: &TenantId, lease: &Lease, progress: Value) -> Result<()> {
        self.limit().check("job progress", &progress)?;
        let mut state = self.lock();
        let job = Self::leased_job(&mut state, tenant, lease, self.now())?;
        job.progress = Some(progress);
        Ok(())
    }

    async fn complete(&self, tenant: &TenantId, lease: &Lease, output: Value) -> Result<()> {
        self.limit().check("job output", &output)?;
        let now = self.now();
        let mut state = self.lock();
        Self::ack_locked(&mut state, tenant, lease, Some(output), now)
    }

    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo> {
        let now = self.now();
        let mut state = self.lock();
        state
            .tenant(tenant)
            .jobs
            .get(&(queue.clone(), job.clone()))
            .map(|j| info_of(queue, job, j, now))
            .ok_or_else(|| Error::not_found(format!("no job {job} in queue {queue}")))
    }

    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>> {
        let after = query.position()?;
        let limit = query.page.effective_limit();
        let now = self.now();
        let mut state = self.lock();
        let mut found: Vec<JobInfo> = state
            .tenant(tenant)
            .jobs
            .iter()
            .filter(|((q, _), _)| q == queue)
            .map(|((_, id), j)| info_of(queue, id, j, now))
            .filter(|i| match query.state {
                Some(f) => i.status == f.status(),
                None => i.status.is_finished(),
            })
            .filter(|i| after.as_ref().is_none_or(|a| &i.history_position() < a))
            .collect();
        found.sort_by_key(|i| std::cmp::Reverse(i.history_position()));
        found.truncate(limit + 1);
        Ok(Page::from_candidates(
            HistoryQuery::CURSOR_KIND,
            found,
            limit,
            JobInfo::history_position,
        ))
    }

    async fn prune_finished(&self, tenant: &TenantId, max: usize) -> Result<u64> {
        storage_ports::queue::check_prune_batch(max)?;
        let now = self.now();
        let mut state = self.lock();
        let jobs = &mut state.tenant(tenant).jobs;
        let due: Vec<(QueueName, JobId)> = jobs
            .iter()
            .filter(|(_, j)| expired(j, now))
            .map(|(k, _)| k.clone())
            .take(max)
            .collect();
        for k in &due {
            jobs.remove(k);
        }
        Ok(due.len() as u64)
    }

    async fn jobs(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<JobInfo>> {
        storage_ports::queue::check_jobs_limit(limit)?;
        let now = self.now();
        let mut state = self.lock();
        let mut found: Vec<(&Job, JobInfo)> = state
            .tenant(tenant)
            .jobs
            .iter()
            .filter(|((q, _), _)| q == queue)
            .map(|((_, id), j)| (j, info_of(queue, id, j, now)))
            .filter(|(_, i)| i.status == status)
            .collect();
        found.sort_by(|(a, ai), (b, bi)| match status {
            JobStatus::Pending => (-i64::from(a.spec.priority), a.run_at, a.seq).cmp(&(
                -i64::from(b.spec.priority),
                b.run_at,
                b.seq,
            )),
            JobStatus::Scheduled => (a.run_at, a.seq).cmp(&(b.run_at, b.seq)),
            JobStatus::Running => lease_expiry(a).cmp(&lease_expiry(b)),
            _ => bi.history_position().cmp(&ai.history_position()),
        });
        Ok(found.into_iter().take(limit).map(|(_, i)| i).collect())
    }

    async fn running_by_key(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
    ) -> Result<Vec<(String, u64)>> {
        let now = self.now();
        let mut state = self.lock();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for ((q, _), j) in &state.tenant(tenant).jobs {
            if q == queue
                && matches!(j.state, JobState::Leased { expires_at, .. } if expires_at > now)
            {
                if let Some(k) = &j.spec.concurrency_key {
                    *counts.entry(k.clone()).or_default() += 1;
                }
            }
        }
        Ok(storage_ports::queue::busiest_first(
            counts.into_iter().collect(),
        ))
    }

    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued> {
        let now = self.now();
        let out = {
            let mut state = self.lock();
            let spec = state
                .tenant(tenant)
                .jobs
                .get(&(queue.clone(), job.clone()))
                .filter(|j| j.state.finished_at().is_some())
                .map(|j| storage_ports::queue::reenqueued(&j.spec))
                .ok_or_else(|| {
                    Error::not_found(format!("no finished job {job} in queue {queue}"))
                })?;
            Self::enqueue_locked(&mut state, tenant, queue, spec, now)?
        };
        self.notify_queue();
        Ok(out)
    }
}

#[async_trait]
impl JobTransfer for MemoryStore {
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>> {
        let mut state = self.lock();
        let mut jobs: Vec<(&QueueName, &Job)> = state
            .tenant(tenant)
            .jobs
            .iter()
            .map(|((q, _), j)| (q, j))
            // The history of completed and cancelled jobs stays where it is (O4).
            .filter(|(_, j)| j.state.is_live() || matches!(j.state, JobState::Dead { .. }))
            .collect();
        jobs.sort_by(|a, b| (a.0, a.1.seq).cmp(&(b.0, b.1.seq)));
        Ok(jobs
            .into_iter()
            .map(|(q, j)| {
                let mut job = j.spec.clone();
                job.run_at = Some(j.run_at);
                job.delay = None;
                let dead = match &j.state {
                    JobState::Dead { error, died_at } => Some(DeadState {
                        attempts: j.attempts,
                        last_error: error.clone(),
                        died_at: *died_at,
                    }),
                    _ => None,
                };
                ExportedJob {
                    queue: q.clone(),
                    job,
                    dead,
                }
            })
            .collect())
    }

    async fn import_dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: NewJob,
        dead: DeadState,
    ) -> Result<()> {
        self.limit().check_job(&job)?;
        self.limit().check_dead(&dead)?;
        let id = job.imported_id()?.clone();
        let mut state = self.lock();
        let seq = state.next_job_seq;
        state.next_job_seq += 1;
        let jobs = &mut state.tenant(tenant).jobs;
        let k = (queue.clone(), id.clone());
        if jobs.contains_key(&k) {
            return Err(kit::job_taken(&id, queue));
        }
        let run_at = job.run_at.unwrap_or(dead.died_at);
        jobs.insert(
            k,
            Job {
                spec: job,
                run_at,
                enqueued_at: dead.died_at,
                seq,
                attempts: dead.attempts,
                last_error: Some(dead.last_error.clone()),
                state: JobState::Dead {
                    error: dead.last_error,
                    died_at: dead.died_at,
                },
                progress: None,
                output: None,
                cancel_requested: false,
            },
        );
        Ok(())
    }
}
