//! Health, stats and schema of the memory adapter (O1-O3).

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Error, Health, Operations, Result, SchemaStatus, StoreStats, TenantId,
};

use crate::{MemoryStore, BACKEND};

#[async_trait]
impl Operations for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        let tenants = self.lock().tenants.len();
        Health {
            backend: BACKEND.into(),
            ok: true,
            detail: format!("in-process memory, {tenants} tenants"),
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let mut state = self.lock();
        let t = state.tenant(tenant);
        let n = |x: usize| x as u64;
        Ok(StoreStats {
            workflows: n(t
                .workflows
                .values()
                .filter(|w| !w.versions.is_empty())
                .count()),
            workflow_versions: n(t.workflows.values().map(|w| w.versions.len()).sum()),
            runs: n(t.runs.len()),
            run_events: n(t.runs.values().map(|r| r.events.len()).sum()),
            metric_records: n(t.metrics.records.len()),
            patterns: n(t.metrics.patterns.len()),
            jobs: n(t.jobs.len()),
            documents: n(t
                .documents
                .values()
                .map(std::collections::BTreeMap::len)
                .sum()),
            credentials: n(t.credentials.len()),
        })
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            BACKEND,
            "schema migrations (nothing is persisted)",
        ))
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            BACKEND,
            "schema migrations (nothing is persisted)",
        ))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let mut out: Vec<TenantId> = self.lock().tenants.keys().cloned().collect();
        out.sort();
        Ok(out)
    }
}
