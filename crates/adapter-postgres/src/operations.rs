//! Health, stats and schema of the PostgreSQL store (O1-O3).

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Error, Health, Operations, Result, SchemaStatus, StoreStats, TenantId,
};

use crate::error::SqlxResultExt;
use crate::schema_home::{self, HISTORY};
use crate::{PostgresStore, BACKEND, MIGRATOR};

impl PostgresStore {
    /// The newest migration this build knows.
    fn known_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The newest migration recorded in the database (0 for a new database).
    async fn applied_version(&self) -> Result<i64> {
        let history = format!("\"{}\".{HISTORY}", self.schema);
        let table: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&history)
            .fetch_one(&self.pool)
            .await
            .op("postgres.schema")?;
        if table.is_none() {
            return Ok(0);
        }
        let v: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT MAX(version) FROM {history} WHERE success"
        )))
        .fetch_one(&self.pool)
        .await
        .op("postgres.schema")?;
        Ok(v.unwrap_or(0))
    }

    /// Refuses a newer database, then applies what is missing (O3).
    pub(crate) async fn apply_migrations(&self) -> Result<SchemaStatus> {
        let (applied, known) = (self.applied_version().await?, Self::known_version());
        SchemaStatus::refuse_newer(applied, known)?;
        schema_home::migrator(&self.schema)
            .run(&self.pool)
            .await
            .map_err(|e| {
                Error::backend(format!("applying the PostgreSQL schema failed: {e}"))
                    .with_operation("postgres.migrate")
            })?;
        Ok(SchemaStatus {
            applied: self.applied_version().await?,
            known,
        })
    }
}

#[async_trait]
impl Operations for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        match sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.pool)
            .await
        {
            Ok(_) => Health {
                backend: BACKEND.into(),
                ok: true,
                detail: format!("{} answers", self.shown),
            },
            Err(e) => Health {
                backend: BACKEND.into(),
                ok: false,
                detail: format!("{} does not answer: {e}", self.shown),
            },
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        // Runs, events and metric records come from the counters schema 5 keeps, so
        // this answers in the same time for a tenant of ten runs or ten million.
        let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(DISTINCT workflow_id) FROM flowstore_workflow_versions WHERE tenant = $1), \
               (SELECT COUNT(*) FROM flowstore_workflow_versions WHERE tenant = $1), \
               (SELECT COUNT(*) FROM flowstore_documents WHERE tenant = $1), \
               (SELECT COALESCE(SUM(n), 0)::int8 FROM flowstore_tenant_counts WHERE tenant = $1 AND what = 'runs'), \
               (SELECT COALESCE(SUM(n), 0)::int8 FROM flowstore_tenant_counts WHERE tenant = $1 AND what = 'run_events'), \
               (SELECT COALESCE(SUM(n), 0)::int8 FROM flowstore_tenant_counts WHERE tenant = $1 AND what = 'metric_records'), \
               (SELECT COUNT(*) FROM flowstore_patterns WHERE tenant = $1), \
               (SELECT COUNT(*) FROM flowstore_jobs WHERE tenant = $1)",
        )
        .bind(tenant.as_str())
        .fetch_one(&self.pool)
        .await
        .op("postgres.stats")?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(StoreStats {
            workflows: n(row.0),
            workflow_versions: n(row.1),
            documents: n(row.2),
            runs: n(row.3),
            run_events: n(row.4),
            metric_records: n(row.5),
            patterns: n(row.6),
            jobs: n(row.7),
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
        .op("postgres.tenants")?;
        names
            .into_iter()
            .map(|n| TenantId::new(n).map_err(|e| Error::corrupt(format!("stored tenant: {e}"))))
            .collect()
    }
}
