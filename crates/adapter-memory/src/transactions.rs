//! T1 in memory: the run and its job are written under one lock, after both were
//! checked, so either both become visible or neither.

use async_trait::async_trait;
use storage_ports::{Enqueued, NewJob, NewRun, QueueName, Result, Run, TenantId, Transactions};

use crate::MemoryStore;

#[async_trait]
impl Transactions for MemoryStore {
    async fn start_run_with_job(
        &self,
        tenant: &TenantId,
        run: NewRun,
        queue: &QueueName,
        job: NewJob,
    ) -> Result<(Run, Enqueued)> {
        self.limit().check_new_run(&run)?;
        self.limit().check_job(&job)?;
        let out = {
            let mut state = self.lock();
            // Check the job part first: nothing is written until both parts can be.
            self.check_enqueue_possible(&mut state, tenant, queue, &job)?;
            let started = Self::start_locked(&mut state, tenant, run)?;
            let enqueued = Self::enqueue_locked(&mut state, tenant, queue, job, self.now())?;
            (started, enqueued)
        };
        self.notify_runs();
        self.notify_queue();
        Ok(out)
    }
}
