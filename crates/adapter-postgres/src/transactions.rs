//! T1 on PostgreSQL: the run, its Started event and its job commit in one
//! transaction.

use async_trait::async_trait;
use storage_ports::{
    Enqueued, Error, NewJob, NewRun, QueueName, Result, Run, TenantId, Transactions,
};

use crate::error::SqlxResultExt;
use crate::queue::enqueue_in;
use crate::PostgresStore;

#[async_trait]
impl Transactions for PostgresStore {
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        self.limit.check_new_run(&run)?;
        self.limit.check_job(&job)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .op("transactions.start_run_with_job")?;
        let run = Self::start_in(&mut *tx, tenant, run).await?;
        // On error the transaction is dropped, which rolls both parts back.
        let enqueued = enqueue_in(&mut tx, tenant, queue, vec![job])
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::backend("the job got no result")))?;
        tx.commit().await.op("transactions.start_run_with_job")?;
        Ok((run, enqueued))
    }
}
