//! Units of work on PostgreSQL (T1-T6): one transaction on one pooled connection,
//! at PostgreSQL's default isolation (read committed), so other sessions see none of
//! its writes until `COMMIT`. Conditional writes stay compare-and-set statements
//! inside it, and a unique enqueue's advisory lock (Q17) is held until the unit ends.
//!
//! Dropping the unit makes sqlx roll back before the connection is reused; a
//! connection that drops mid-unit is rolled back by the server. Because a failed
//! statement aborts a PostgreSQL transaction and a later `COMMIT` would quietly roll
//! back, the unit remembers such a failure ([`UnitHealth`]) and `commit` answers it.

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::adapter_kit::unit::UnitHealth;
use storage_ports::{
    CollectionName, Document, DocumentId, Enqueued, Error, NewJob, NewRun, QueueName, Result, Run,
    TenantId, Transactions, UnitOfWork,
};

use crate::documents::{create_in, delete_in, get_in, new_document, replace_in};
use crate::error::SqlxResultExt;
use crate::queue::enqueue_in;
use crate::PostgresStore;

/// An open unit; see the module.
pub(crate) struct PgUnit {
    store: PostgresStore,
    tenant: TenantId,
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    health: UnitHealth,
}

impl std::fmt::Debug for PgUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUnit")
            .field("tenant", &self.tenant)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transactions for PostgresStore {
    async fn begin(&self, tenant: &TenantId) -> Result<Box<dyn UnitOfWork>> {
        let tx = self.pool.begin().await.op("transactions.begin")?;
        Ok(Box::new(PgUnit {
            store: self.clone(),
            tenant: tenant.clone(),
            tx,
            health: UnitHealth::default(),
        }))
    }
}

#[async_trait]
impl UnitOfWork for PgUnit {
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
        self.store.limit.check("document", &body)?;
        let r = create_in(
            &mut self.tx,
            &self.tenant,
            collection,
            new_document(id, body),
        )
        .await;
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
        let r = replace_in(
            &mut self.tx,
            &self.tenant,
            collection,
            id,
            expected_revision,
            body,
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
        let r = PostgresStore::start_in(&mut *self.tx, &self.tenant, run).await;
        self.health.observe(r)
    }

    async fn enqueue(&mut self, queue: &QueueName, job: NewJob) -> Result<Enqueued> {
        self.health.check()?;
        self.store.limit.check_job(&job)?;
        // Workers are woken by the insert trigger's NOTIFY, which PostgreSQL delivers at
        // commit and drops on rollback.
        let r = enqueue_in(&mut self.tx, &self.tenant, queue, vec![job])
            .await
            .and_then(|mut out| {
                out.pop()
                    .unwrap_or_else(|| Err(Error::backend("the job got no result")))
            });
        self.health.observe(r)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        this.health.check()?;
        this.tx.commit().await.op("transactions.commit")
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.op("transactions.rollback")
    }
}
