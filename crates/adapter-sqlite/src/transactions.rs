//! T1 on SQLite: the run, its Started event and its job are written in one
//! transaction.

use async_trait::async_trait;
use storage_ports::{
    CompleteRun, Enqueued, NewJob, NewRun, QueueName, Result, Run, TenantId, Transactions,
};

use crate::error::SqlxResultExt;
use crate::queue::enqueue_in;
use crate::SqliteStore;

#[async_trait]
impl Transactions for SqliteStore {
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        self.limit.check_new_run(&run)?;
        self.limit.check_job(&job)?;
        let run = Run::started(run);
        let _gate = self.write_gate().await;
        let mut tx = self
            .write_tx()
            .await
            .op("transactions.start_run_with_job")?;
        // A run just started is a complete run with no steps: its log is the Started event.
        let started = CompleteRun {
            run,
            steps: Vec::new(),
        };
        SqliteStore::write_complete(&mut tx, tenant, &started).await?;
        let run = started.run;
        // On error the transaction is dropped, which rolls both parts back.
        let enqueued = enqueue_in(&mut tx, tenant, queue, job, self.now(), None).await?;
        tx.commit().await.op("transactions.start_run_with_job")?;
        self.notify_queue();
        Ok((run, enqueued))
    }
}
