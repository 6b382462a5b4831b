//! Workflow versions in PostgreSQL (W1-W9). Version assignment locks the workflow's
//! row in `flowstore_workflows` (W4) and raises its high-water mark (W3).

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::versioning::parent_in_lineage;
use storage_ports::rules::versioning::{plan_put, PutPlan, VersionState};
use storage_ports::{
    ContentHash, Error, NewWorkflowVersion, Page, PageRequest, Result, TenantId, VersionMeta,
    WorkflowId, WorkflowStore, WorkflowVersion,
};

use crate::error::SqlxResultExt;
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;
use storage_ports::adapter_kit::{stored_id, stored_u32, to_i64};

const CURSOR: &str = storage_ports::adapter_kit::cursors::WORKFLOWS;

/// The metadata columns, as a macro so that queries stay `&'static str`.
macro_rules! columns {
    () => {
        "workflow_id, version, parent, author, created_at, content_hash"
    };
}

fn meta(row: &PgRow) -> Result<VersionMeta> {
    let parent: Option<i64> = row.try_get("parent").op("workflows.decode")?;
    Ok(VersionMeta {
        workflow_id: stored_id(
            row.try_get("workflow_id").op("workflows.decode")?,
            "workflow id",
        )?,
        version: stored_u32(row.try_get("version").op("workflows.decode")?, "version")?,
        parent: parent
            .map(|p| stored_u32(p, "parent version"))
            .transpose()?,
        author: row.try_get("author").op("workflows.decode")?,
        created_at: from_pg(row.try_get("created_at").op("workflows.decode")?),
        content_hash: ContentHash::parse(
            &row.try_get::<String, _>("content_hash")
                .op("workflows.decode")?,
        )?,
    })
}

fn version_of(row: &PgRow) -> Result<WorkflowVersion> {
    let Json(definition) = row.try_get("definition").op("workflows.decode")?;
    Ok(WorkflowVersion {
        meta: meta(row)?,
        definition,
    })
}

#[async_trait]
impl WorkflowStore for PostgresStore {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.limit.check_workflow(&new)?;
        let hash = ContentHash::of(&new.definition);
        let (t, w) = (tenant.as_str(), new.workflow_id.as_str());
        let mut tx = self.pool.begin().await.op("workflows.put")?;
        // Create the workflow row if needed, then lock it: version assignment for one
        // workflow is serialized here, across nodes.
        sqlx::query("INSERT INTO flowstore_workflows (tenant, workflow_id, high_water) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
            .bind(t)
            .bind(w)
            .execute(&mut *tx)
            .await
            .op("workflows.put")?;
        let high: i64 = sqlx::query_scalar(
            "SELECT high_water FROM flowstore_workflows WHERE tenant = $1 AND workflow_id = $2 FOR UPDATE",
        )
        .bind(t)
        .bind(w)
        .fetch_one(&mut *tx)
        .await
        .op("workflows.put")?;
        let existing = match new.version {
            Some(v) => sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 AND version = $3"))
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
            Some(p) => sqlx::query("SELECT 1 FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 AND version = $3")
                .bind(t)
                .bind(w)
                .bind(i64::from(p))
                .fetch_optional(&mut *tx)
                .await
                .op("workflows.put")?
                .is_some(),
            None => true,
        };
        let plan = plan_put(
            &new.workflow_id,
            new.version,
            new.parent,
            &hash,
            VersionState {
                high_water: stored_u32(high, "high-water mark")?,
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
        sqlx::query("INSERT INTO flowstore_workflow_versions (tenant, workflow_id, version, parent, author, created_at, content_hash, definition) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(t)
            .bind(stored.meta.workflow_id.as_str())
            .bind(i64::from(v))
            .bind(stored.meta.parent.map(i64::from))
            .bind(stored.meta.author.as_deref())
            .bind(to_pg(stored.meta.created_at)?)
            .bind(stored.meta.content_hash.as_str())
            .bind(Json(&stored.definition))
            .execute(&mut *tx)
            .await
            .op("workflows.put")?;
        sqlx::query("UPDATE flowstore_workflows SET high_water = GREATEST(high_water, $1) WHERE tenant = $2 AND workflow_id = $3")
            .bind(i64::from(v))
            .bind(t)
            .bind(stored.meta.workflow_id.as_str())
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
        sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 AND version = $3"))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(i64::from(version))
            .fetch_optional(&self.pool)
            .await
            .op("workflows.get")?
            .as_ref()
            .map(version_of)
            .transpose()?
            .ok_or_else(|| kit::workflow_version_missing(id, version))
    }

    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        sqlx::query(concat!("SELECT ", columns!(), ", definition FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 ORDER BY version DESC LIMIT 1"))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .op("workflows.latest")?
            .as_ref()
            .map(version_of)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("workflow {id} has no version")))
    }

    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        sqlx::query(concat!("SELECT ", columns!(), " FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 ORDER BY version"))
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
        let rows = sqlx::query(concat!("WITH RECURSIVE chain(v, depth) AS (SELECT $1::BIGINT, 0 UNION ALL \
               SELECT p.parent, chain.depth + 1 FROM chain JOIN flowstore_workflow_versions p \
               ON p.tenant = $2 AND p.workflow_id = $3 AND p.version = chain.v WHERE p.parent IS NOT NULL AND p.parent < p.version) \
             SELECT ", columns!(), " FROM chain JOIN flowstore_workflow_versions x \
               ON x.tenant = $2 AND x.workflow_id = $3 AND x.version = chain.v ORDER BY chain.depth"))
            .bind(i64::from(version))
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
        let rows = sqlx::query(concat!(
            "SELECT DISTINCT ON (workflow_id) ",
            columns!(),
            " FROM flowstore_workflow_versions \
             WHERE tenant = $1 AND workflow_id > $2 ORDER BY workflow_id, version DESC LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(after.as_ref().map_or("", WorkflowId::as_str))
        .bind(to_i64(limit as u64 + 1))
        .fetch_all(&self.pool)
        .await
        .op("workflows.list")?;
        let candidates = rows.iter().map(meta).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_candidates(CURSOR, candidates, limit, |m| {
            m.workflow_id.clone()
        }))
    }

    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        let done = sqlx::query("DELETE FROM flowstore_workflow_versions WHERE tenant = $1 AND workflow_id = $2 AND version = $3")
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
