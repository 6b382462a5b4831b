//! Workflow versions in SQLite (W1-W9).

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::versioning::parent_in_lineage;
use storage_ports::rules::versioning::{plan_put, PutPlan, VersionState};
use storage_ports::{
    ContentHash, Error, NewWorkflowVersion, Page, PageRequest, Result, TenantId, Timestamp,
    VersionMeta, WorkflowId, WorkflowStore, WorkflowVersion,
};

use crate::error::{json_column, SqlxResultExt};
use crate::SqliteStore;

const CURSOR: &str = storage_ports::adapter_kit::cursors::WORKFLOWS;
/// The metadata columns, as a macro so that queries stay `&'static str` (sqlx
/// refuses SQL built at run time).
macro_rules! columns {
    () => {
        "workflow_id, version, parent, author, created_at, content_hash"
    };
}

fn meta(row: &SqliteRow) -> Result<VersionMeta> {
    let version: i64 = row.try_get("version").op("workflows.decode")?;
    let parent: Option<i64> = row.try_get("parent").op("workflows.decode")?;
    let to_u32 = |v: i64| {
        u32::try_from(v).map_err(|_| Error::corrupt(format!("stored version {v} is out of range")))
    };
    Ok(VersionMeta {
        workflow_id: WorkflowId::new(
            row.try_get::<String, _>("workflow_id")
                .op("workflows.decode")?,
        )
        .map_err(|e| Error::corrupt(format!("stored workflow id: {e}")))?,
        version: to_u32(version)?,
        parent: parent.map(to_u32).transpose()?,
        author: row.try_get("author").op("workflows.decode")?,
        created_at: Timestamp::from_micros(row.try_get("created_at").op("workflows.decode")?),
        content_hash: ContentHash::parse(
            &row.try_get::<String, _>("content_hash")
                .op("workflows.decode")?,
        )?,
    })
}

fn version_of(row: &SqliteRow) -> Result<WorkflowVersion> {
    let def: String = row.try_get("definition").op("workflows.decode")?;
    Ok(WorkflowVersion {
        meta: meta(row)?,
        definition: json_column(&def, "definition")?,
    })
}

impl SqliteStore {
    async fn fetch_version(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Option<WorkflowVersion>> {
        let row = sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? AND version = ?"))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await
        .op("workflows.get")?;
        row.as_ref().map(version_of).transpose()
    }
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.limit.check_workflow(&new)?;
        let hash = ContentHash::of(&new.definition);
        let workflow = new.workflow_id.clone();
        let (t, w) = (tenant.as_str(), workflow.as_str());
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("workflows.put")?;
        // A write first, so the transaction holds the write lock from the start and
        // never has to upgrade a read lock (which busy_timeout cannot wait out).
        sqlx::query("INSERT INTO flowstore_workflows (tenant, workflow_id, high_water) VALUES (?, ?, 0) ON CONFLICT DO NOTHING")
            .bind(t)
            .bind(w)
            .execute(&mut *tx)
            .await
            .op("workflows.put")?;
        let high: i64 = sqlx::query_scalar(
            "SELECT high_water FROM flowstore_workflows WHERE tenant = ? AND workflow_id = ?",
        )
        .bind(t)
        .bind(w)
        .fetch_one(&mut *tx)
        .await
        .op("workflows.put")?;
        let existing = match new.version {
            Some(v) => sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? AND version = ?"))
                .bind(t)
                .bind(w)
                .bind(i64::from(v))
                .fetch_optional(&mut *tx)
                .await
                .op("workflows.put")?
                .as_ref()
                .map(version_of)
                .transpose()?,
            None => None,
        };
        let parent_exists = match new.parent {
            Some(p) => sqlx::query("SELECT 1 FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? AND version = ?")
                .bind(t)
                .bind(w)
                .bind(i64::from(p))
                .fetch_optional(&mut *tx)
                .await
                .op("workflows.put")?
                .is_some(),
            None => true,
        };
        let high_water = u32::try_from(high).map_err(|_| {
            Error::corrupt(format!("stored high-water mark {high} is out of range"))
        })?;
        let plan = plan_put(
            &new.workflow_id,
            new.version,
            new.parent,
            &hash,
            VersionState {
                high_water,
                existing: existing.as_ref().map(|e| &e.meta.content_hash),
                parent_exists,
            },
        )?;
        let v = match plan {
            PutPlan::AlreadyStored(_) => {
                tx.rollback().await.op("workflows.put")?;
                return existing.ok_or_else(|| {
                    Error::backend("an existing version vanished inside a transaction")
                });
            }
            PutPlan::Insert(v) => v,
        };
        let stored = new.into_stored(v, hash);
        let definition = serde_json::to_string(&stored.definition)
            .map_err(|e| Error::invalid_input(format!("definition: {e}")))?;
        sqlx::query("INSERT INTO flowstore_workflow_versions (tenant, workflow_id, version, parent, author, created_at, content_hash, definition) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(t)
            .bind(w)
            .bind(i64::from(v))
            .bind(stored.meta.parent.map(i64::from))
            .bind(stored.meta.author.as_deref())
            .bind(stored.meta.created_at.as_micros())
            .bind(stored.meta.content_hash.as_str())
            .bind(definition)
            .execute(&mut *tx)
            .await
            .op("workflows.put")?;
        sqlx::query("UPDATE flowstore_workflows SET high_water = MAX(high_water, ?) WHERE tenant = ? AND workflow_id = ?")
            .bind(i64::from(v))
            .bind(t)
            .bind(w)
            .execute(&mut *tx)
            .await
            .op("workflows.put")?;
        tx.commit().await.op("workflows.put")?;
        Ok(stored)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        self.fetch_version(tenant, id, version)
            .await?
            .ok_or_else(|| kit::workflow_version_missing(id, version))
    }

    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        let row = sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? ORDER BY version DESC LIMIT 1"))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("workflows.latest")?;
        row.as_ref()
            .map(version_of)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("workflow {id} has no version")))
    }

    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        sqlx::query(concat!("SELECT ", columns!(), " FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? ORDER BY version"))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await
            .op("workflows.versions")?
            .iter()
            .map(meta)
            .collect()
    }

    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        // One round trip: a recursive walk up the parent links.
        let rows = sqlx::query(concat!("WITH RECURSIVE chain(v, depth) AS (SELECT ?, 0 UNION ALL \
               SELECT p.parent, chain.depth + 1 FROM chain JOIN flowstore_workflow_versions p \
               ON p.tenant = ? AND p.workflow_id = ? AND p.version = chain.v WHERE p.parent IS NOT NULL AND p.parent < p.version) \
             SELECT ", columns!(), " FROM chain JOIN flowstore_workflow_versions x \
               ON x.tenant = ? AND x.workflow_id = ? AND x.version = chain.v ORDER BY chain.depth"))
        .bind(i64::from(version))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .op("workflows.lineage")?;
        let chain: Vec<VersionMeta> = rows.iter().map(meta).collect::<Result<_>>()?;
        if chain.first().is_none_or(|m| m.version != version) {
            return Err(kit::workflow_version_missing(id, version));
        }
        // The walk follows only older parents; one that is not older ends it here.
        if let Some(last) = chain.last() {
            parent_in_lineage(last)?;
        }
        Ok(chain)
    }

    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        let after: Option<WorkflowId> =
            page.cursor.as_ref().map(|c| c.decode(CURSOR)).transpose()?;
        let limit = page.effective_limit();
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM flowstore_workflow_versions v WHERE tenant = ?1 AND workflow_id > ?2 \
             AND version = (SELECT MAX(version) FROM flowstore_workflow_versions m WHERE m.tenant = v.tenant AND m.workflow_id = v.workflow_id) \
             ORDER BY workflow_id LIMIT ?3"))
        .bind(tenant.as_str())
        .bind(after.as_ref().map_or("", WorkflowId::as_str))
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .op("workflows.list")?;
        let candidates = rows.iter().map(meta).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_candidates(CURSOR, candidates, limit, |m| {
            m.workflow_id.clone()
        }))
    }

    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        let done = sqlx::query("DELETE FROM flowstore_workflow_versions WHERE tenant = ? AND workflow_id = ? AND version = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(i64::from(version))
            .execute(&self.pool)
            .await
            .op("workflows.delete")?;
        if done.rows_affected() == 0 {
            return Err(kit::workflow_version_missing(id, version));
        }
        Ok(())
    }
}
