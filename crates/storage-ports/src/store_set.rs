//! One handle per port: what an adapter hands out and what the contract suite and the
//! wiring consume. A port a backend does not offer is still present and answers
//! `Unsupported` (see [`crate::unsupported::UnsupportedStore`]).

use std::sync::Arc;

use crate::capabilities::Capabilities;
use crate::credential::CredentialStore;
use crate::document::DocumentStore;
use crate::metrics::{MetricsStore, MetricsTransfer};
use crate::operations::Operations;
use crate::queue::{JobQueue, JobTransfer};
use crate::run::RunStore;
use crate::transaction::Transactions;
use crate::workflow::WorkflowStore;

/// Every port of one backend (or of a wiring that mixes backends).
#[derive(Debug, Clone)]
pub struct StoreSet {
    /// Definitions.
    pub workflows: Arc<dyn WorkflowStore>,
    /// Run logs.
    pub runs: Arc<dyn RunStore>,
    /// Metrics.
    pub metrics: Arc<dyn MetricsStore>,
    /// Credentials.
    pub credentials: Arc<dyn CredentialStore>,
    /// Job queue.
    pub queue: Arc<dyn JobQueue>,
    /// The queue backend's schedules of periodic jobs (Q19).
    pub schedules: Arc<dyn crate::schedule::ScheduleStore>,
    /// Documents.
    pub documents: Arc<dyn DocumentStore>,
    /// Cross-port transactions.
    pub transactions: Arc<dyn Transactions>,
    /// Health, stats, schema.
    pub operations: Arc<dyn Operations>,
    /// Export and import of jobs, for moving data between backends.
    pub job_transfer: Arc<dyn JobTransfer>,
    /// Export and import of metrics, for moving data between backends.
    pub metrics_transfer: Arc<dyn MetricsTransfer>,
}

impl StoreSet {
    /// The capabilities the operations handle reports.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        self.operations.capabilities()
    }

    /// The documents of `collection` in `tenant`, read and written as `T`.
    #[must_use]
    pub fn collection<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        tenant: &crate::TenantId,
        collection: &crate::CollectionName,
    ) -> crate::Collection<T> {
        crate::Collection::new(self.documents.clone(), tenant.clone(), collection.clone())
    }

    /// The queue `queue` of `tenant`, with payloads of type `T`.
    #[must_use]
    pub fn typed_queue<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        tenant: &crate::TenantId,
        queue: &crate::QueueName,
    ) -> crate::TypedQueue<T> {
        crate::TypedQueue::new(self.queue.clone(), tenant.clone(), queue.clone())
    }

    /// A set whose every port answers `Unsupported`, naming `backend`: the starting
    /// point of a backend that offers some ports, and of tests of the gating itself.
    #[must_use]
    pub fn unsupported(backend: &str) -> Self {
        let u = Arc::new(crate::unsupported::UnsupportedStore::new(backend));
        Self {
            workflows: u.clone(),
            runs: u.clone(),
            metrics: u.clone(),
            credentials: u.clone(),
            queue: u.clone(),
            schedules: u.clone(),
            documents: u.clone(),
            transactions: u.clone(),
            operations: u.clone(),
            job_transfer: u.clone(),
            metrics_transfer: u,
        }
    }
}
