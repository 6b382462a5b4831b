//! Transactions across ports (spec T1), narrowed to the unit of work workflow engines
//! need: a run and the job that will execute it become visible together or not at all.
//!
//! A general "begin/commit" handle cannot be offered honestly across files, Redis and
//! SQL alike; this port names the atomic operation instead, and backends that cannot
//! make it atomic declare `transactions: false`.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{QueueName, TenantId};
use crate::queue::{Enqueued, NewJob};
use crate::run::{NewRun, Run};

/// Atomic multi-port operations.
#[async_trait]
pub trait Transactions: Send + Sync + std::fmt::Debug {
    /// Starts `run` and enqueues `job` on `queue` in one transaction: if either fails,
    /// neither is visible (T1).
    ///
    /// # Errors
    /// The first failure of either part (e.g. `AlreadyExists` for an existing run or job id);
    /// `Unsupported` without the `transactions` capability.
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)>;
}

impl crate::operation::Operation {
    /// [`Transactions::start_run_with_job`]: a repeat after an unseen success answers `AlreadyExists`.
    pub const TRANSACTIONS_START_RUN_WITH_JOB: Self = Self::new(
        "transactions.start_run_with_job",
        crate::operation::Port::Transactions,
        crate::operation::Repeat::Never,
    );
}
