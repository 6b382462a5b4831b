//! Workflows as YAML files (W1-W10).

use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use storage_ports::rules::versioning::parent_in_lineage;
use storage_ports::rules::versioning::{plan_put, PutPlan, VersionState};
use storage_ports::{
    ContentHash, Error, ErrorKind, NewWorkflowVersion, Page, PageRequest, Result, TenantId,
    VersionMeta, WorkflowId, WorkflowStore, WorkflowVersion,
};

use crate::files::{
    corrupt, create_private_dir, io_error, lock_exclusive, remove_durable, write_atomic,
};
use crate::FsStore;

const CURSOR: &str = storage_ports::adapter_kit::cursors::WORKFLOWS;

impl FsStore {
    pub(crate) fn workflows_dir(&self, tenant: &TenantId) -> PathBuf {
        // Validated ids contain no separators and are never `.` or `..` (N1).
        self.root.join(tenant.as_str()).join("workflows")
    }

    fn workflow_dir(&self, tenant: &TenantId, id: &WorkflowId) -> PathBuf {
        self.workflows_dir(tenant).join(id.as_str())
    }

    /// Version numbers with a `v<N>.yaml` file, ascending.
    pub(crate) fn version_numbers(dir: &Path) -> Result<Vec<u32>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", dir, &e)),
        };
        let mut out: Vec<u32> = entries
            .filter_map(std::result::Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix('v')?.strip_suffix(".yaml")?.parse().ok()
            })
            .filter(|v| *v > 0)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Reads and checks one version file.
    fn read_version(dir: &Path, id: &WorkflowId, version: u32) -> Result<WorkflowVersion> {
        let path = dir.join(format!("v{version}.yaml"));
        let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::not_found(format!("workflow {id} has no version {version}"))
            }
            std::io::ErrorKind::InvalidData => corrupt(&path, "not UTF-8 text"),
            _ => io_error("reading", &path, &e),
        })?;
        let stored: WorkflowVersion = serde_saphyr::from_str(&text)
            .map_err(|e| corrupt(&path, &format!("not a workflow version file: {e}")))?;
        if stored.meta.workflow_id != *id || stored.meta.version != version {
            return Err(corrupt(
                &path,
                &format!(
                    "it says workflow {} version {}",
                    stored.meta.workflow_id, stored.meta.version
                ),
            ));
        }
        let actual = ContentHash::of(&stored.definition);
        if actual != stored.meta.content_hash {
            return Err(corrupt(
                &path,
                &format!(
                    "content hash is {actual}, the file says {}",
                    stored.meta.content_hash
                ),
            ));
        }
        Ok(stored)
    }

    /// Valid versions of a workflow, damaged files logged and skipped (W10).
    fn valid_versions(dir: &Path, id: &WorkflowId) -> Result<Vec<WorkflowVersion>> {
        let mut out = Vec::new();
        for v in Self::version_numbers(dir)? {
            match Self::read_version(dir, id, v) {
                Ok(wv) => out.push(wv),
                Err(e) if e.kind() == ErrorKind::CorruptData => {
                    tracing::warn!(error = %e, "skipping a damaged workflow file")
                }
                // Deleted between listing and reading.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn high_water(dir: &Path) -> Result<u32> {
        let path = dir.join(".high-water");
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .map_err(|_| corrupt(&path, "not a version number")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_error("reading", &path, &e)),
        }
    }

    fn put_blocking(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        let hash = ContentHash::of(&new.definition);
        let dir = self.workflow_dir(tenant, &new.workflow_id);
        create_private_dir(&dir)?;
        let _lock = lock_exclusive(&dir.join(".lock"))?;
        let present = Self::version_numbers(&dir)?;
        let high_water = Self::high_water(&dir)?.max(present.last().copied().unwrap_or(0));
        let existing = match new.version.filter(|v| present.contains(v)) {
            Some(v) => Some(Self::read_version(&dir, &new.workflow_id, v)?),
            None => None,
        };
        let plan = plan_put(
            &new.workflow_id,
            new.version,
            new.parent,
            &hash,
            VersionState {
                high_water,
                existing: existing.as_ref().map(|e| &e.meta.content_hash),
                parent_exists: new.parent.is_none_or(|p| present.contains(&p)),
            },
        )?;
        let v = match plan {
            PutPlan::AlreadyStored(_) => {
                return existing
                    .ok_or_else(|| Error::backend("an existing version vanished under the lock"));
            }
            PutPlan::Insert(v) => v,
        };
        let stored = new.into_stored(v, hash);
        let yaml = serde_saphyr::to_string(&stored).map_err(|e| {
            Error::invalid_input(format!("the definition cannot be written as YAML: {e}"))
        })?;
        // Check the file reads back to the same value before it becomes visible.
        let back: WorkflowVersion = serde_saphyr::from_str(&yaml).map_err(|e| {
            Error::invalid_input(format!("the definition does not survive YAML: {e}"))
        })?;
        if back != stored {
            return Err(Error::invalid_input(
                "the definition does not round-trip through YAML exactly; nothing was written",
            ));
        }
        if v > high_water {
            write_atomic(&dir.join(".high-water"), v.to_string().as_bytes())?;
        }
        write_atomic(&dir.join(format!("v{v}.yaml")), yaml.as_bytes())?;
        Ok(stored)
    }
}

#[async_trait]
impl WorkflowStore for FsStore {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.limit.check_workflow(&new)?;
        let t = tenant.clone();
        self.blocking(move |s| s.put_blocking(&t, new)).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        let (t, id) = (tenant.clone(), id.clone());
        self.blocking(move |s| Self::read_version(&s.workflow_dir(&t, &id), &id, version))
            .await
    }

    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        let (t, id) = (tenant.clone(), id.clone());
        self.blocking(move |s| {
            Self::valid_versions(&s.workflow_dir(&t, &id), &id)?
                .pop()
                .ok_or_else(|| Error::not_found(format!("workflow {id} has no version")))
        })
        .await
    }

    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        let (t, id) = (tenant.clone(), id.clone());
        self.blocking(move |s| {
            Ok(Self::valid_versions(&s.workflow_dir(&t, &id), &id)?
                .into_iter()
                .map(|v| v.meta)
                .collect())
        })
        .await
    }

    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        let (t, id) = (tenant.clone(), id.clone());
        self.blocking(move |s| {
            let dir = s.workflow_dir(&t, &id);
            let mut chain = vec![Self::read_version(&dir, &id, version)?.meta];
            // Files are edited by hand: a parent that is not older would loop.
            while let Some(p) = chain
                .last()
                .map(|m| {
                    parent_in_lineage(m).map_err(|e| {
                        e.with_context(
                            "file",
                            dir.join(format!("v{}.yaml", m.version))
                                .display()
                                .to_string(),
                        )
                    })
                })
                .transpose()?
                .flatten()
            {
                match Self::read_version(&dir, &id, p) {
                    Ok(wv) => chain.push(wv.meta),
                    // A deleted ancestor ends the readable chain.
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(chain)
        })
        .await
    }

    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        let after: Option<WorkflowId> =
            page.cursor.as_ref().map(|c| c.decode(CURSOR)).transpose()?;
        let limit = page.effective_limit();
        let t = tenant.clone();
        self.blocking(move |s| {
            let dir = s.workflows_dir(&t);
            let mut ids: Vec<WorkflowId> = match fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(std::result::Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|n| WorkflowId::new(n).ok())
                    .filter(|id| after.as_ref().is_none_or(|a| id > a))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_error("listing", &dir, &e)),
            };
            ids.sort();
            let mut candidates = Vec::new();
            for id in ids {
                if candidates.len() > limit {
                    break;
                }
                if let Some(latest) = Self::valid_versions(&dir.join(id.as_str()), &id)?.pop() {
                    candidates.push(latest.meta);
                }
            }
            Ok(Page::from_candidates(CURSOR, candidates, limit, |m| {
                m.workflow_id.clone()
            }))
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        let (t, id) = (tenant.clone(), id.clone());
        self.blocking(move |s| {
            let dir = s.workflow_dir(&t, &id);
            let path = dir.join(format!("v{version}.yaml"));
            if !path.exists() {
                return Err(Error::not_found(format!(
                    "workflow {id} has no version {version}"
                )));
            }
            let _lock = lock_exclusive(&dir.join(".lock"))?;
            // Keep the high-water mark on disk before the newest version disappears.
            let high = Self::high_water(&dir)?;
            if version > high {
                write_atomic(&dir.join(".high-water"), version.to_string().as_bytes())?;
            }
            remove_durable(&path)
        })
        .await
    }
}
