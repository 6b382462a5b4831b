//! The job queue in memory (Q1-Q10).
//!
//! Leases are checked against the clock at every read: a job whose lease has expired
//! is ready again, and its next delivery raises the attempt count. Fencing tokens come
//! from one counter, so a token is never current for two leases.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::lease::takeback_limit;
use storage_ports::JobTransfer;
use storage_ports::{
    DeadJob, DeadState, Dequeue, Enqueued, Error, ExportedJob, FailOutcome, JobFailure, JobId,
    JobQueue, Lease, LeasedJob, NewJob, QueueName, QueueStats, Result, TenantId, Timestamp,
};

use crate::state::{Job, JobState, State};
use crate::MemoryStore;

/// Whether a job can be delivered at `now`.
fn is_ready(job: &Job, now: Timestamp) -> bool {
    match job.state {
        JobState::Ready => job.run_at <= now,
        JobState::Leased { expires_at, .. } => expires_at <= now,
        JobState::Dead { .. } => false,
    }
}

impl MemoryStore {
    /// Fails like [`Self::enqueue_locked`] would, without writing.
    pub(crate) fn check_enqueue_possible(
        &self,
        state: &mut State,
        tenant: &TenantId,
        queue: &QueueName,
        job: &NewJob,
    ) -> Result<()> {
        if let Some(id) = &job.id {
            if state
                .tenant(tenant)
                .jobs
                .contains_key(&(queue.clone(), id.clone()))
            {
                return Err(kit::job_taken(id, queue));
            }
        }
        Ok(())
    }

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
            let first = jobs.iter().find(|((q, _), j)| {
                q == queue
                    && j.spec.dedup_key.as_ref() == Some(key)
                    && !matches!(j.state, JobState::Dead { .. })
            });
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
            },
        );
        state.next_job_seq += 1;
        Ok(Enqueued {
            job_id: id,
            deduplicated: false,
        })
    }

    /// The job a lease names, if the lease is current.
    fn leased_job<'s>(
        state: &'s mut State,
        tenant: &TenantId,
        lease: &Lease,
    ) -> Result<&'s mut Job> {
        let job = state
            .tenant(tenant)
            .jobs
            .get_mut(&(lease.queue.clone(), lease.job_id.clone()))
            .ok_or_else(|| lease.stale())?;
        match job.state {
            JobState::Leased { token, .. } if token == lease.token => Ok(job),
            _ => Err(lease.stale()),
        }
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
            if job.attempts >= job.spec.max_attempts {
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
        let mut ready: Vec<(&JobId, &mut Job)> = jobs
            .iter_mut()
            .filter(|((q, id), j)| {
                q == queue
                    && match j.state {
                        JobState::Ready => j.run_at <= now,
                        JobState::Leased { .. } => taken_back.contains(id),
                        JobState::Dead { .. } => false,
                    }
            })
            .map(|((_, id), j)| (id, j))
            .collect();
        let order = |j: &Job| (-i64::from(j.spec.priority), j.run_at, j.seq);
        ready.sort_by_key(|(_, j)| order(j));
        let expires_at = now.plus(req.lease_for);
        let mut out = Vec::new();
        for (job_id, job) in ready.into_iter().take(req.max) {
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
        let job = Self::leased_job(&mut state, tenant, lease)?;
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
        let mut state = self.lock();
        Ok(leases
            .iter()
            .map(|lease| {
                Self::leased_job(&mut state, tenant, lease)?;
                state
                    .tenant(tenant)
                    .jobs
                    .remove(&(lease.queue.clone(), lease.job_id.clone()));
                Ok(())
            })
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
            let job = Self::leased_job(&mut state, tenant, lease)?;
            let now = self.now();
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
                        JobState::Dead { .. } => None,
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
            let job = Self::leased_job(&mut state, tenant, lease)?;
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
            },
        );
        Ok(())
    }
}
