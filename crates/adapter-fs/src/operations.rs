//! Health and stats of the file store (O1, O2).

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Health, Operations, Result, SchemaStatus, StoreStats, TenantId, WorkflowId,
};

use crate::{FsStore, BACKEND};

#[async_trait]
impl Operations for FsStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        let root = self.root.display().to_string();
        let probe = self.root.join(".health");
        let r = self
            .blocking(move |_| {
                crate::files::write_atomic(&probe, b"ok")
                    .and_then(|()| crate::files::remove_durable(&probe))
            })
            .await;
        match r {
            Ok(()) => Health {
                backend: BACKEND.into(),
                ok: true,
                detail: format!("{root} is writable"),
            },
            Err(e) => Health {
                backend: BACKEND.into(),
                ok: false,
                detail: format!("{root} is not writable: {e}"),
            },
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let t = tenant.clone();
        self.blocking(move |s| {
            let mut stats = StoreStats::default();
            if let Ok(collections) = std::fs::read_dir(s.documents_dir(&t)) {
                for c in collections.filter_map(std::result::Result::ok) {
                    stats.documents += Self::document_ids(&c.path())?.len() as u64;
                }
            }
            let runs = s.run_heads(&t)?;
            stats.runs = runs.len() as u64;
            stats.run_events = runs.iter().map(|h| s.event_count(&t, h)).sum();
            for d in s.metric_workflows(&t)? {
                stats.metric_records += Self::metric_records(&d)?.len() as u64;
                stats.patterns += Self::read_patterns(&d)?.len() as u64;
            }
            let dir = s.workflows_dir(&t);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Ok(stats);
            };
            for id in entries
                .filter_map(std::result::Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| WorkflowId::new(n).ok())
            {
                let n = Self::version_numbers(&dir.join(id.as_str()))?.len() as u64;
                stats.workflow_versions += n;
                stats.workflows += u64::from(n > 0);
            }
            Ok(stats)
        })
        .await
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        self.blocking(|s| crate::format::open(&s.root)).await
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        // Format 1 is the only one: there is nothing to upgrade yet.
        self.blocking(|s| crate::format::open(&s.root)).await
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let root = self.root.clone();
        self.blocking(move |_| {
            let entries = std::fs::read_dir(root.as_path())
                .map_err(|e| crate::files::io_error("listing", &root, &e))?;
            let mut out: Vec<TenantId> = entries
                .filter_map(std::result::Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| TenantId::new(n).ok())
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }
}
