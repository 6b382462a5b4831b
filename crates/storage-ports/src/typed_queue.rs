//! `TypedQueue<T>`: one queue of one tenant whose job payloads are values of `T`.
//!
//! Enqueue takes a `T` (or a [`NewJob`] built around one), dequeue gives back `T`s
//! with their leases; acks, fails and heartbeats go through the [`JobQueue`] the
//! handle wraps. A leased payload that does not decode as `T` is never handed to the
//! worker: the job is failed without retry, so it sits in the dead letters with the
//! reason (requeue it once the type or the payload is repaired), and the dequeue
//! reports it in [`TypedBatch::undecodable`] as `CorruptData` naming the job.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ids::{JobId, QueueName, TenantId};
use crate::queue::{
    Dequeue, Enqueued, JobFailure, JobQueue, JobQueueExt as _, Lease, LeasedJob, NewJob,
};
use crate::time::Timestamp;

/// A leased job whose payload is a `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedJob<T> {
    /// The lease to ack, fail or extend with.
    pub lease: Lease,
    /// The payload.
    pub payload: T,
    /// This delivery's attempt number, from 1.
    pub attempt: u32,
    /// Attempts limit.
    pub max_attempts: u32,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
}

/// What one typed dequeue leased.
#[derive(Debug)]
pub struct TypedBatch<T> {
    /// The jobs whose payloads decode, in dequeue order.
    pub jobs: Vec<TypedJob<T>>,
    /// One `CorruptData` error per leased job that did not decode; each was failed
    /// without retry, so it is in the dead letters.
    pub undecodable: Vec<Error>,
}

/// One queue of one tenant, with payloads of type `T`.
pub struct TypedQueue<T> {
    queue: Arc<dyn JobQueue>,
    tenant: TenantId,
    name: QueueName,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedQueue<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedQueue")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> TypedQueue<T> {
    /// The queue `name` of `tenant` in `queue`.
    #[must_use]
    pub fn new(queue: Arc<dyn JobQueue>, tenant: TenantId, name: QueueName) -> Self {
        Self {
            queue,
            tenant,
            name,
            _type: PhantomData,
        }
    }

    /// A job carrying `payload`, with the defaults of [`NewJob::new`], to adjust with
    /// its `with_*` methods before [`Self::enqueue_job`].
    ///
    /// # Errors
    /// `InvalidInput` when `payload` does not serialize.
    pub fn job(payload: &T) -> Result<NewJob> {
        let value = serde_json::to_value(payload).map_err(|e| {
            Error::invalid_input(format!(
                "a {} cannot be stored as a job payload: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        Ok(NewJob::new(value))
    }

    /// Enqueues `payload` with the default job options.
    ///
    /// # Errors
    /// `InvalidInput` when it does not serialize or breaks a limit, and the queue's
    /// errors.
    pub async fn enqueue(&self, payload: &T) -> Result<Enqueued> {
        self.enqueue_job(Self::job(payload)?).await
    }

    /// Enqueues a job built with [`Self::job`].
    ///
    /// # Errors
    /// The queue's errors.
    pub async fn enqueue_job(&self, job: NewJob) -> Result<Enqueued> {
        self.queue.enqueue(&self.tenant, &self.name, job).await
    }

    /// Leases up to `req.max` jobs; see the module documentation for payloads that do
    /// not decode.
    ///
    /// # Errors
    /// The queue's errors (an undecodable payload is not one).
    pub async fn dequeue(&self, req: Dequeue) -> Result<TypedBatch<T>> {
        let leased = self.queue.dequeue(&self.tenant, &self.name, req).await?;
        let mut batch = TypedBatch {
            jobs: Vec::with_capacity(leased.len()),
            undecodable: Vec::new(),
        };
        for job in leased {
            match Self::decode(job) {
                Ok(typed) => batch.jobs.push(typed),
                Err(rejected) => {
                    let (lease, e) = *rejected;
                    let failure = JobFailure {
                        error: e.message().to_owned(),
                        retry: false,
                    };
                    self.queue.fail(&self.tenant, &lease, failure).await?;
                    batch.undecodable.push(e);
                }
            }
        }
        Ok(batch)
    }

    /// The job as a `T`, or its lease and the `CorruptData` error.
    fn decode(job: LeasedJob) -> std::result::Result<TypedJob<T>, Box<(Lease, Error)>> {
        match serde_json::from_value(job.payload) {
            Ok(payload) => Ok(TypedJob {
                lease: job.lease,
                payload,
                attempt: job.attempt,
                max_attempts: job.max_attempts,
                enqueued_at: job.enqueued_at,
            }),
            Err(e) => {
                let err = undecodable::<T>(&job.lease.job_id, &e);
                Err(Box::new((job.lease, err)))
            }
        }
    }

    /// Acknowledges a job.
    ///
    /// # Errors
    /// `LeaseLost`, `Cancelled`, and the queue's errors.
    pub async fn ack(&self, lease: &Lease) -> Result<()> {
        self.queue.ack(&self.tenant, lease).await
    }

    /// Fails a job (retried per its backoff when `failure.retry`).
    ///
    /// # Errors
    /// `LeaseLost`, `Cancelled`, and the queue's errors.
    pub async fn fail(&self, lease: &Lease, failure: JobFailure) -> Result<crate::FailOutcome> {
        self.queue.fail(&self.tenant, lease, failure).await
    }

    /// The untyped queue and its tenant and name, for what this handle does not wrap
    /// (heartbeats, progress, the history).
    #[must_use]
    pub fn untyped(&self) -> (&Arc<dyn JobQueue>, &TenantId, &QueueName) {
        (&self.queue, &self.tenant, &self.name)
    }
}

fn undecodable<T>(job: &JobId, e: &serde_json::Error) -> Error {
    Error::corrupt(format!(
        "the payload of job {job} does not decode as {}: {e}",
        std::any::type_name::<T>()
    ))
    .with_context("job", job.as_str())
}
