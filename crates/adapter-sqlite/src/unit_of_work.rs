//! Units of work on SQLite (T1-T6): one `BEGIN IMMEDIATE` transaction, held with the
//! process's write gate from `begin` to `commit`, so the unit is the database's one
//! writer while it is open and readers on other connections see none of it (WAL
//! snapshots) until it commits. Dropping it returns the connection, which rolls the
//! transaction back; a process that dies mid-unit leaves it in the journal, which
//! SQLite discards when the database is next opened.

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::adapter_kit::unit::UnitHealth;
use storage_ports::{
    CollectionName, CompleteRun, Document, DocumentId, Enqueued, NewJob, NewRun, QueueName, Result,
    Run, TenantId, Transactions, UnitOfWork,
};

use crate::documents::{create_in, delete_in, get_in, replace_in};
use crate::error::SqlxResultExt;
use crate::queue::enqueue_in;
use crate::SqliteStore;

/// An open unit; see the module.
pub(crate) struct SqliteUnit {
    store: SqliteStore,
    tenant: TenantId,
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    health: UnitHealth,
    enqueued: bool,
    // Last: released after the transaction is dropped (and so rolled back).
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl std::fmt::Debug for SqliteUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteUnit")
            .field("tenant", &self.tenant)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transactions for SqliteStore {
    async fn begin(&self, tenant: &TenantId) -> Result<Box<dyn UnitOfWork>> {
        let gate = self.write_gate().await;
        let tx = self.write_tx().await.op("transactions.begin")?;
        Ok(Box::new(SqliteUnit {
            store: self.clone(),
            tenant: tenant.clone(),
            tx,
            health: UnitHealth::default(),
            enqueued: false,
            _gate: gate,
        }))
    }
}

#[async_trait]
impl UnitOfWork for SqliteUnit {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn create_document(
        &mut self,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.health.check()?;
        let doc = self.store.new_document(id, body)?;
        let r = create_in(&mut self.tx, &self.tenant, collection, doc).await;
        self.health.observe(r)
    }

    async fn get_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        self.health.check()?;
        let r = get_in(&mut self.tx, &self.tenant, collection, id).await;
        self.health.observe(r)
    }

    async fn replace_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document> {
        self.health.check()?;
        self.store.limit.check("document", &body)?;
        let now = self.store.now();
        let r = replace_in(
            &mut self.tx,
            &self.tenant,
            collection,
            id,
            expected_revision,
            body,
            now,
        )
        .await;
        self.health.observe(r)
    }

    async fn delete_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        self.health.check()?;
        let r = delete_in(
            &mut self.tx,
            &self.tenant,
            collection,
            id,
            expected_revision,
        )
        .await;
        self.health.observe(r)
    }

    async fn start_run(&mut self, run: NewRun) -> Result<Run> {
        self.health.check()?;
        self.store.limit.check_new_run(&run)?;
        // A run just started is a complete run with no steps: its log is the Started event.
        let started = CompleteRun {
            run: Run::started(run),
            steps: Vec::new(),
        };
        let r = SqliteStore::write_complete(&mut self.tx, &self.tenant, &started).await;
        self.health.observe(r)?;
        Ok(started.run)
    }

    async fn enqueue(&mut self, queue: &QueueName, job: NewJob) -> Result<Enqueued> {
        self.health.check()?;
        self.store.limit.check_job(&job)?;
        let now = self.store.now();
        let r = enqueue_in(&mut self.tx, &self.tenant, queue, job, now, None).await;
        let enqueued = self.health.observe(r)?;
        self.enqueued |= !enqueued.deduplicated;
        Ok(enqueued)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        this.health.check()?;
        this.tx.commit().await.op("transactions.commit")?;
        if this.enqueued {
            this.store.notify_queue();
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.op("transactions.rollback")
    }
}
