//! Health, stats and schema of the SQLite store (O1-O3).

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Error, Health, Operations, Result, SchemaStatus, StoreStats, TenantId,
};

use crate::error::SqlxResultExt;
use crate::schema_home;
use crate::{SqliteStore, BACKEND, MIGRATOR};

impl SqliteStore {
    /// The newest migration this build knows.
    fn known_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The newest migration recorded in the database (0 for a new database).
    async fn applied_version(&self) -> Result<i64> {
        let table: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_flowstore_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .op("sqlite.schema")?;
        if table.is_none() {
            return Ok(0);
        }
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _flowstore_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .op("sqlite.schema")?;
        Ok(v.unwrap_or(0))
    }

    /// Refuses a newer database, then applies what is missing (O3).
    pub(crate) async fn apply_migrations(&self) -> Result<SchemaStatus> {
        schema_home::adopt_sqlx_history(self).await?;
        let (applied, known) = (self.applied_version().await?, Self::known_version());
        SchemaStatus::refuse_newer(applied, known)?;
        schema_home::migrator().run(&self.pool).await.map_err(|e| {
            Error::backend(format!("applying the SQLite schema failed: {e}"))
                .with_operation("sqlite.migrate")
        })?;
        Ok(SchemaStatus {
            applied: self.applied_version().await?,
            known,
        })
    }
}

#[async_trait]
impl Operations for SqliteStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        match sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
        {
            Ok(_) => Health {
                backend: BACKEND.into(),
                ok: true,
                detail: format!("{} answers", self.path),
            },
            Err(e) => Health {
                backend: BACKEND.into(),
                ok: false,
                detail: format!("{} does not answer: {e}", self.path),
            },
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let count = |sql: &'static str| {
            let t = tenant.as_str().to_owned();
            let pool = self.pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(sql)
                    .bind(t)
                    .fetch_one(&pool)
                    .await
                    .op("sqlite.stats")?;
                Ok::<u64, Error>(u64::try_from(n).unwrap_or(0))
            }
        };
        Ok(StoreStats {
            workflows: count("SELECT COUNT(DISTINCT workflow_id) FROM flowstore_workflow_versions WHERE tenant = ?").await?,
            workflow_versions: count("SELECT COUNT(*) FROM flowstore_workflow_versions WHERE tenant = ?").await?,
            documents: count("SELECT COUNT(*) FROM flowstore_documents WHERE tenant = ?").await?,
            runs: count("SELECT COUNT(*) FROM flowstore_runs WHERE tenant = ?").await?,
            run_events: count("SELECT COUNT(*) FROM flowstore_run_events WHERE tenant = ?").await?,
            metric_records: count("SELECT COUNT(*) FROM flowstore_metric_records WHERE tenant = ?").await?,
            patterns: count("SELECT COUNT(*) FROM flowstore_patterns WHERE tenant = ?").await?,
            jobs: count("SELECT COUNT(*) FROM flowstore_jobs WHERE tenant = ?").await?,
            ..StoreStats::default()
        })
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        Ok(SchemaStatus {
            applied: self.applied_version().await?,
            known: Self::known_version(),
        })
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        self.apply_migrations().await
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tenant FROM flowstore_workflow_versions UNION SELECT tenant FROM flowstore_runs UNION SELECT tenant FROM flowstore_metric_records UNION SELECT tenant FROM flowstore_patterns UNION SELECT tenant FROM flowstore_jobs UNION SELECT tenant FROM flowstore_documents ORDER BY tenant",
        )
        .fetch_all(&self.pool)
        .await
        .op("sqlite.tenants")?;
        names
            .into_iter()
            .map(|n| TenantId::new(n).map_err(|e| Error::corrupt(format!("stored tenant: {e}"))))
            .collect()
    }
}
