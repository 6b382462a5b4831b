//! Transactions across ports (spec T1): a [`UnitOfWork`] groups writes to documents,
//! runs and the queue of one tenant, and commits all of them or none.
//!
//! Only a backend instance that holds all three in one transactional engine can offer
//! this honestly (SQLite, PostgreSQL, memory); files and Redis declare
//! `transactions: false` and answer `Unsupported`. Hosts usually go through
//! [`TransactionsExt::unit_of_work`], which commits when their closure succeeds and
//! rolls back when it fails or panics.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::{QueueName, TenantId};
use crate::queue::{Enqueued, NewJob};
use crate::run::{NewRun, Run};
use crate::unit_of_work::UnitOfWork;

/// Units of work across ports.
#[async_trait]
pub trait Transactions: Send + Sync + std::fmt::Debug {
    /// Begins a unit of work for `tenant`. Nothing it writes is visible to anyone else
    /// until [`UnitOfWork::commit`]; dropping it uncommitted rolls it back.
    ///
    /// On SQLite a unit holds the database's single writer until it ends: keep units
    /// short, and inside one write only through it.
    ///
    /// # Errors
    /// `Unsupported` without the `transactions` capability; `Unavailable` when the
    /// backend cannot start one.
    async fn begin(&self, tenant: &TenantId) -> Result<Box<dyn UnitOfWork>>;
}

/// The future a unit-of-work closure returns; it borrows the unit.
pub type UnitFuture<'u, T, E> =
    Pin<Box<dyn Future<Output = std::result::Result<T, E>> + Send + 'u>>;

/// Conveniences over [`Transactions`], implemented for every implementor.
#[async_trait]
pub trait TransactionsExt: Transactions {
    /// Runs `work` in a new unit of work for `tenant`: commits when it returns `Ok`,
    /// rolls back when it returns `Err` (that error is returned), and, because the unit
    /// is dropped while unwinding, rolls back when it panics (the panic goes on).
    ///
    /// ```ignore
    /// let job = storage.transactions.unit_of_work(&tenant, |tx| Box::pin(async move {
    ///     let doc = tx.create_document(&executions, None, json!({"plan": "p1"})).await?;
    ///     tx.enqueue(&queue, NewJob::new(json!({"execution": doc.id}))).await
    /// })).await?;
    /// ```
    ///
    /// # Errors
    /// `work`'s error; the error of `begin` or `commit`, converted into `E`.
    async fn unit_of_work<T, E, F>(&self, tenant: &TenantId, work: F) -> std::result::Result<T, E>
    where
        T: Send,
        E: From<Error> + Send,
        F: for<'u> FnOnce(&'u mut dyn UnitOfWork) -> UnitFuture<'u, T, E> + Send,
    {
        let mut unit = self.begin(tenant).await?;
        match work(unit.as_mut()).await {
            Ok(value) => {
                unit.commit().await?;
                Ok(value)
            }
            Err(e) => {
                // The closure's error is what the caller needs; a failed rollback
                // leaves nothing visible either (the backend discards the transaction).
                let _ = unit.rollback().await;
                Err(e)
            }
        }
    }

    /// Starts `run` and enqueues `job` on `queue` in one unit of work (T1): if either
    /// fails, neither is visible.
    ///
    /// # Errors
    /// The first failure of either part (e.g. `AlreadyExists` for an existing run or
    /// job id); `Unsupported` without the `transactions` capability.
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        // The closure's future may outlive the borrowed name, so it owns a copy.
        let queue = queue.clone();
        self.unit_of_work(tenant, move |tx| {
            Box::pin(async move {
                let run = tx.start_run(run).await?;
                let enqueued = tx.enqueue(&queue, job).await?;
                Ok((run, enqueued))
            })
        })
        .await
    }
}

impl<T: Transactions + ?Sized> TransactionsExt for T {}

impl crate::operation::Operation {
    /// [`Transactions::begin`]: writes nothing, so a repeat is harmless.
    pub const TRANSACTIONS_BEGIN: Self = Self::new(
        "transactions.begin",
        crate::operation::Port::Transactions,
        crate::operation::Repeat::Safe,
    );
}
