//! One unit of work: the writes a host makes to documents, runs and the queue of one
//! tenant, visible to others only once it commits, and then all together.
//!
//! # Behavior (T2-T6)
//! - Reads through the unit see its own writes; nobody else sees them before commit.
//! - An *answer* (`NotFound`, `AlreadyExists`, `PreconditionFailed`, `InvalidInput`)
//!   leaves the unit usable: a host may catch it and go on, and commit what succeeded.
//! - A failure of the backend itself (a statement that failed, a lost connection)
//!   ends the unit: every later call and `commit` answer it, and nothing is written.
//! - Dropping a unit without `commit` rolls it back, so a closure that returns early
//!   or panics, and a connection that drops, leave nothing behind.
//!
//! Layers intercept [`crate::Transactions::begin`] only: inside a transaction a
//! retry or a timeout cannot be honest (a repeated statement runs in a transaction
//! that may already be aborted), so a unit's calls go straight to the backend.

use async_trait::async_trait;
use serde_json::Value;

use crate::document::Document;
use crate::error::Result;
use crate::ids::{CollectionName, DocumentId, QueueName, TenantId};
use crate::queue::{Enqueued, NewJob};
use crate::run::{NewRun, Run};

/// An open unit of work; see the [module](self) for what it guarantees.
#[async_trait]
pub trait UnitOfWork: Send + std::fmt::Debug {
    /// The tenant every call of the unit acts for.
    fn tenant(&self) -> &TenantId;

    /// Creates a document, as [`crate::DocumentStore::create`].
    ///
    /// # Errors
    /// `AlreadyExists` when `id` exists (in the store or earlier in the unit);
    /// `InvalidInput` (size).
    async fn create_document(
        &mut self,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document>;

    /// Reads a document, the unit's own writes included.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document>;

    /// Replaces a document at `expected_revision`, as [`crate::DocumentStore::replace`].
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed` for a stale revision.
    async fn replace_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document>;

    /// Deletes a document, as [`crate::DocumentStore::delete`].
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed` for a stale revision.
    async fn delete_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()>;

    /// Starts a run, as [`crate::RunStore::start`].
    ///
    /// # Errors
    /// `AlreadyExists` for a run id in use; `InvalidInput` (size).
    async fn start_run(&mut self, run: NewRun) -> Result<Run>;

    /// Enqueues a job, as [`crate::JobQueue::enqueue_batch`] does for one job: a
    /// deduplication key that matches a job answers that job. Workers see it once the
    /// unit commits.
    ///
    /// # Errors
    /// `AlreadyExists` for a job id in use; `InvalidInput` (size).
    async fn enqueue(&mut self, queue: &QueueName, job: NewJob) -> Result<Enqueued>;

    /// Makes every write of the unit visible, together.
    ///
    /// # Errors
    /// The failure that ended the unit earlier (nothing is written);
    /// `PreconditionFailed`, marked temporary, where the backend checks at commit and
    /// another caller's write overtook what the unit read (memory; run the unit
    /// again); `Unavailable` when the backend cannot say whether the commit happened.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Discards every write of the unit.
    ///
    /// # Errors
    /// `Unavailable` when the backend cannot be told; it discards the transaction
    /// anyway when the connection ends.
    async fn rollback(self: Box<Self>) -> Result<()>;
}
