//! The operations port (spec O1-O3): health, stats, schema.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::capabilities::Capabilities;
use crate::error::Result;
use crate::ids::TenantId;

/// Whether the backend answers (O1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Backend name.
    pub backend: String,
    /// Whether it answered.
    pub ok: bool,
    /// What was checked, or why it failed.
    pub detail: String,
}

/// What a tenant holds (O2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoreStats {
    /// Workflows with at least one version.
    pub workflows: u64,
    /// Stored workflow versions.
    pub workflow_versions: u64,
    /// Runs.
    pub runs: u64,
    /// Run events.
    pub run_events: u64,
    /// Runs with recorded metrics.
    pub metric_records: u64,
    /// Patterns.
    pub patterns: u64,
    /// Jobs not yet acknowledged, dead ones included.
    pub jobs: u64,
    /// Documents.
    pub documents: u64,
    /// Credentials.
    pub credentials: u64,
}

/// The schema state (O3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaStatus {
    /// Newest migration recorded in the backend.
    pub applied: i64,
    /// Newest migration this build knows.
    pub known: i64,
}

impl SchemaStatus {
    /// Refuses a store written by a newer flowstore (O3), the same way on every
    /// backend: `applied` is what the store records, `known` the newest this build has.
    ///
    /// # Errors
    /// `InvalidInput` naming both versions and the fix.
    pub fn refuse_newer(applied: i64, known: i64) -> crate::Result<()> {
        if applied > known {
            return Err(crate::Error::invalid_input(format!(
                "this database was written by a newer flowstore (schema {applied}; this build knows up to {known}); upgrade flowstore to open it"
            )));
        }
        Ok(())
    }
}

/// Health, stats and schema of one backend.
#[async_trait]
pub trait Operations: Send + Sync + std::fmt::Debug {
    /// What the backend offers.
    fn capabilities(&self) -> Capabilities;

    /// Whether it answers, and why not (O1). Never fails: a failure is `ok: false`.
    async fn health(&self) -> Health;

    /// Counts of what a tenant holds (O2), for the concerns this backend keeps.
    ///
    /// # Errors
    /// Backend errors.
    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats>;

    /// The schema state (O3): migrations are applied when the store opens.
    ///
    /// # Errors
    /// `Unsupported` without the `schema_migrations` capability.
    async fn schema(&self) -> Result<SchemaStatus>;

    /// Applies pending migrations again; applying twice changes nothing (O3).
    ///
    /// # Errors
    /// `Unsupported` without the `schema_migrations` capability; a store written by a
    /// newer schema is an `InvalidInput` error saying so.
    async fn migrate(&self) -> Result<SchemaStatus>;

    /// The tenants that hold anything here, sorted: what a migration copies when it is
    /// not told which tenants to copy.
    ///
    /// # Errors
    /// `Unsupported` where the backend cannot list them without scanning what it must
    /// never scan (Redis keys, keyrings): name the tenants instead.
    async fn tenants(&self) -> Result<Vec<TenantId>>;
}

impl crate::operation::Operation {
    /// [`Operations::stats`].
    pub const OPERATIONS_STATS: Self = Self::new(
        "operations.stats",
        crate::operation::Port::Operations,
        crate::operation::Repeat::Safe,
    );
    /// [`Operations::schema`].
    pub const OPERATIONS_SCHEMA: Self = Self::new(
        "operations.schema",
        crate::operation::Port::Operations,
        crate::operation::Repeat::Safe,
    );
    /// [`Operations::migrate`]: applying the schema migrations twice changes nothing (O3).
    pub const OPERATIONS_MIGRATE: Self = Self::new(
        "operations.migrate",
        crate::operation::Port::Operations,
        crate::operation::Repeat::Safe,
    );
    /// [`Operations::tenants`].
    pub const OPERATIONS_TENANTS: Self = Self::new(
        "operations.tenants",
        crate::operation::Port::Operations,
        crate::operation::Repeat::Safe,
    );
}
