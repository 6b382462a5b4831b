//! Workflows in memory (W1-W9).

use async_trait::async_trait;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::versioning::parent_in_lineage;
use storage_ports::rules::versioning::{plan_put, PutPlan, VersionState};
use storage_ports::{
    ContentHash, Error, NewWorkflowVersion, Page, PageRequest, Result, TenantId, VersionMeta,
    WorkflowId, WorkflowStore, WorkflowVersion,
};

use crate::MemoryStore;

const CURSOR: &str = storage_ports::adapter_kit::cursors::WORKFLOWS;

#[async_trait]
impl WorkflowStore for MemoryStore {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.limit().check_workflow(&new)?;
        let hash = ContentHash::of(&new.definition);
        let mut state = self.lock();
        let wf = state
            .tenant(tenant)
            .workflows
            .entry(new.workflow_id.clone())
            .or_default();
        let plan = plan_put(
            &new.workflow_id,
            new.version,
            new.parent,
            &hash,
            VersionState {
                high_water: wf.high_water,
                existing: new
                    .version
                    .and_then(|v| wf.versions.get(&v))
                    .map(|v| &v.meta.content_hash),
                parent_exists: new.parent.is_none_or(|p| wf.versions.contains_key(&p)),
            },
        )?;
        match plan {
            PutPlan::AlreadyStored(v) => wf
                .versions
                .get(&v)
                .cloned()
                .ok_or_else(|| kit::workflow_version_missing(&new.workflow_id, v)),
            PutPlan::Insert(v) => {
                let stored = new.into_stored(v, hash);
                wf.high_water = wf.high_water.max(v);
                wf.versions.insert(v, stored.clone());
                Ok(stored)
            }
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        let mut state = self.lock();
        state
            .tenant(tenant)
            .workflows
            .get(id)
            .and_then(|w| w.versions.get(&version))
            .cloned()
            .ok_or_else(|| kit::workflow_version_missing(id, version))
    }

    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        let mut state = self.lock();
        state
            .tenant(tenant)
            .workflows
            .get(id)
            .and_then(|w| w.versions.values().next_back())
            .cloned()
            .ok_or_else(|| Error::not_found(format!("workflow {id} has no version")))
    }

    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        let mut state = self.lock();
        Ok(state
            .tenant(tenant)
            .workflows
            .get(id)
            .map(|w| w.versions.values().map(|v| v.meta.clone()).collect())
            .unwrap_or_default())
    }

    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        let mut state = self.lock();
        let wf = state
            .tenant(tenant)
            .workflows
            .get(id)
            .ok_or_else(|| kit::workflow_version_missing(id, version))?;
        let mut chain = Vec::new();
        let mut next = Some(version);
        while let Some(v) = next {
            let Some(found) = wf.versions.get(&v) else {
                if chain.is_empty() {
                    return Err(kit::workflow_version_missing(id, version));
                }
                // A deleted ancestor ends the readable chain.
                break;
            };
            chain.push(found.meta.clone());
            next = parent_in_lineage(&found.meta)?;
        }
        Ok(chain)
    }

    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        let after: Option<WorkflowId> =
            page.cursor.as_ref().map(|c| c.decode(CURSOR)).transpose()?;
        let limit = page.effective_limit();
        let mut state = self.lock();
        let candidates: Vec<VersionMeta> = state
            .tenant(tenant)
            .workflows
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
            .filter_map(|(_, w)| w.versions.values().next_back().map(|v| v.meta.clone()))
            .take(limit + 1)
            .collect();
        Ok(Page::from_candidates(CURSOR, candidates, limit, |m| {
            m.workflow_id.clone()
        }))
    }

    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        let mut state = self.lock();
        state
            .tenant(tenant)
            .workflows
            .get_mut(id)
            .and_then(|w| w.versions.remove(&version))
            .map(|_| ())
            .ok_or_else(|| kit::workflow_version_missing(id, version))
    }
}
