//! T1 on SQLite: the run, its Started event and its job are written in one
//! transaction.

use async_trait::async_trait;
use storage_ports::{
    Enqueued, NewJob, NewRun, QueueName, Result, Run, RunEvent, RunEventKind, TenantId,
    Transactions,
};

use crate::error::SqlxResultExt;
use crate::queue::enqueue_in;
use crate::runs::{insert_event, insert_run};
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
        self.limit.check("run inputs", &run.inputs)?;
        job.validate()?;
        self.limit.check("job payload", &job.payload)?;
        let run = Run::started(run);
        let mut tx = self
            .pool
            .begin()
            .await
            .op("transactions.start_run_with_job")?;
        insert_run(&mut tx, tenant, &run, 2).await?;
        insert_event(
            &mut tx,
            tenant,
            &run.run_id,
            &RunEvent {
                seq: 1,
                at: run.started_at,
                kind: RunEventKind::Started,
            },
        )
        .await?;
        // On error the transaction is dropped, which rolls both parts back.
        let enqueued = enqueue_in(&mut tx, tenant, queue, job).await?;
        tx.commit().await.op("transactions.start_run_with_job")?;
        self.notify_queue();
        Ok((run, enqueued))
    }
}
