//! Metrics in PostgreSQL (M1-M6). Recording a run is one transaction: the record (its
//! primary key makes recording idempotent), then each aggregate row locked, folded
//! and written back, then the points. Concurrent recorders of one workflow queue on
//! the aggregate's row lock, so nothing is lost (M5).

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use storage_ports::MetricsTransfer;
use storage_ports::{
    Baseline, Distribution, DistributionSummary, MetricName, MetricSummary, MetricsStore, Pattern,
    PatternObservation, Result, RunAggregate, RunMetric, SeriesBucket, SeriesQuery, TenantId,
    WorkflowId,
};

use crate::error::SqlxResultExt;
use crate::runs::json_text;
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;
use storage_ports::adapter_kit::to_i64;

/// Locks, folds and writes one JSON state row inside the transaction. The row is
/// created empty first, so that there is always a row to lock.
async fn fold<T: DeserializeOwned + serde::Serialize + Default + Send + Unpin + 'static>(
    tx: &mut Transaction<'_, Postgres>,
    sql: (&'static str, &'static str, &'static str),
    keys: (&str, &str, &str),
    apply: impl FnOnce(&mut T),
) -> Result<()> {
    let (create, select, update) = sql;
    sqlx::query(create)
        .bind(keys.0)
        .bind(keys.1)
        .bind(keys.2)
        .bind(json_text(&T::default(), "aggregate")?)
        .execute(&mut **tx)
        .await
        .op("metrics.record")?;
    let Json(mut state): Json<T> = sqlx::query_scalar(select)
        .bind(keys.0)
        .bind(keys.1)
        .bind(keys.2)
        .fetch_one(&mut **tx)
        .await
        .op("metrics.record")?;
    apply(&mut state);
    sqlx::query(update)
        .bind(keys.0)
        .bind(keys.1)
        .bind(keys.2)
        .bind(json_text(&state, "aggregate")?)
        .execute(&mut **tx)
        .await
        .op("metrics.record")?;
    Ok(())
}

#[async_trait]
impl MetricsStore for PostgresStore {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        metric.validate()?;
        let t = tenant.as_str();
        let w = metric.workflow_id.as_str();
        let mut tx = self.pool.begin().await.op("metrics.record")?;
        let inserted = sqlx::query("INSERT INTO flowstore_metric_records (tenant, run_id, record) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING")
            .bind(t)
            .bind(metric.run_id.as_str())
            .bind(json_text(&metric, "metric record")?)
            .execute(&mut *tx)
            .await
            .op("metrics.record")?
            .rows_affected();
        if inserted == 0 {
            tx.rollback().await.op("metrics.record")?;
            return Ok(false);
        }
        let version = metric.version.to_string();
        fold::<RunAggregate>(
            &mut tx,
            (
                "INSERT INTO flowstore_metric_aggregates (tenant, workflow_id, version, state) VALUES ($1, $2, $3::bigint, $4::jsonb) ON CONFLICT DO NOTHING",
                "SELECT state FROM flowstore_metric_aggregates WHERE tenant = $1 AND workflow_id = $2 AND version = $3::bigint FOR UPDATE",
                "UPDATE flowstore_metric_aggregates SET state = $4::jsonb WHERE tenant = $1 AND workflow_id = $2 AND version = $3::bigint",
            ),
            (t, w, &version),
            |a| a.add(&metric),
        )
        .await?;
        for (name, v) in &metric.values {
            fold::<Distribution>(
                &mut tx,
                (
                    "INSERT INTO flowstore_metric_values (tenant, workflow_id, name, state) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    "SELECT state FROM flowstore_metric_values WHERE tenant = $1 AND workflow_id = $2 AND name = $3 FOR UPDATE",
                    "UPDATE flowstore_metric_values SET state = $4::jsonb WHERE tenant = $1 AND workflow_id = $2 AND name = $3",
                ),
                (t, w, name.as_str()),
                |d| d.add(*v),
            )
            .await?;
        }
        if !metric.values.is_empty() {
            let (names, values): (Vec<&str>, Vec<f64>) =
                metric.values.iter().map(|(n, v)| (n.as_str(), *v)).unzip();
            sqlx::query("INSERT INTO flowstore_metric_points (tenant, workflow_id, name, at, run_id, value) SELECT $1, $2, p.name, $3, $4, p.value FROM UNNEST($5::text[], $6::float8[]) AS p(name, value)")
                .bind(t)
                .bind(w)
                .bind(to_pg(metric.finished_at)?)
                .bind(metric.run_id.as_str())
                .bind(names)
                .bind(values)
                .execute(&mut *tx)
                .await
                .op("metrics.record")?;
        }
        tx.commit().await.op("metrics.record")?;
        Ok(true)
    }

    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        let states: Vec<Json<RunAggregate>> = sqlx::query_scalar("SELECT state FROM flowstore_metric_aggregates WHERE tenant = $1 AND workflow_id = $2 AND ($3::bigint IS NULL OR version = $3)")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(version.map(i64::from))
            .fetch_all(&self.pool)
            .await
            .op("metrics.summary")?;
        let mut total = RunAggregate::default();
        for s in &states {
            total.merge(&s.0);
        }
        Ok(total.summary())
    }

    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        let state: Option<Json<Distribution>> = sqlx::query_scalar("SELECT state FROM flowstore_metric_values WHERE tenant = $1 AND workflow_id = $2 AND name = $3")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .op("metrics.value_summary")?;
        Ok(state.and_then(|d| d.0.summary()))
    }

    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        query.validate()?;
        let rows = sqlx::query("SELECT at, value FROM flowstore_metric_points WHERE tenant = $1 AND workflow_id = $2 AND name = $3 AND at >= $4 AND at < $5 ORDER BY at")
            .bind(tenant.as_str())
            .bind(query.workflow_id.as_str())
            .bind(query.name.as_str())
            .bind(to_pg(query.from)?)
            .bind(to_pg(query.to)?)
            .fetch_all(&self.pool)
            .await
            .op("metrics.series")?;
        let points = rows
            .iter()
            .map(|r| {
                Ok((
                    from_pg(r.try_get("at").op("metrics.series")?),
                    r.try_get::<f64, _>("value").op("metrics.series")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(query.bucketize(points))
    }

    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>> {
        let values: Vec<f64> = sqlx::query_scalar("SELECT value FROM flowstore_metric_points WHERE tenant = $1 AND workflow_id = $2 AND name = $3 ORDER BY at DESC, run_id DESC LIMIT $4")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(name.as_str())
            .bind(to_i64(last_n as u64))
            .fetch_all(&self.pool)
            .await
            .op("metrics.baseline")?;
        Ok(Baseline::of(&values))
    }

    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern> {
        observation.validate()?;
        self.limit.check_pattern(&observation)?;
        let mut tx = self.pool.begin().await.op("metrics.upsert_pattern")?;
        // Lock the pattern's row if it exists; concurrent first observations of one
        // key meet at the primary key, and the loser retries as an update.
        let previous: Option<Json<Pattern>> = sqlx::query_scalar("SELECT pattern FROM flowstore_patterns WHERE tenant = $1 AND workflow_id = $2 AND kind = $3 AND key = $4 FOR UPDATE")
            .bind(tenant.as_str())
            .bind(observation.workflow_id.as_str())
            .bind(&observation.kind)
            .bind(&observation.key)
            .fetch_optional(&mut *tx)
            .await
            .op("metrics.upsert_pattern")?;
        let next = Pattern::upserted(previous.as_ref().map(|p| &p.0), observation.clone());
        let inserted = write_pattern(&mut tx, tenant, &next, previous.is_none()).await?;
        if !inserted {
            // Someone created it between our read and write: fold into theirs.
            tx.rollback().await.op("metrics.upsert_pattern")?;
            return Box::pin(self.upsert_pattern(tenant, observation)).await;
        }
        tx.commit().await.op("metrics.upsert_pattern")?;
        Ok(next)
    }

    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        let rows = sqlx::query("SELECT pattern FROM flowstore_patterns WHERE tenant = $1 AND ($2::text IS NULL OR workflow_id = $2)")
            .bind(tenant.as_str())
            .bind(workflow.map(WorkflowId::as_str))
            .fetch_all(&self.pool)
            .await
            .op("metrics.patterns")?;
        // A damaged pattern is logged and skipped (W10).
        let (mut out, damaged) = storage_ports::adapter_kit::readable(
            rows.iter().map(|r| json_of::<Pattern>(r, "pattern")),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged pattern is skipped");
        }
        out.sort_by(Pattern::listing_order);
        Ok(out)
    }
}

/// The JSON column `col` of a row as a `T`; a value of another shape is corrupt data.
fn json_of<T: serde::de::DeserializeOwned>(row: &sqlx::postgres::PgRow, col: &str) -> Result<T> {
    use sqlx::Row as _;
    let Json(v) = row.try_get::<Json<T>, _>(col).op("metrics.decode")?;
    Ok(v)
}

#[async_trait]
impl MetricsTransfer for PostgresStore {
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        let rows = sqlx::query(
            "SELECT record FROM flowstore_metric_records WHERE tenant = $1 ORDER BY run_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .op("metrics.export_records")?;
        let (records, damaged) = storage_ports::adapter_kit::readable(
            rows.iter().map(|r| json_of::<RunMetric>(r, "record")),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged metric record is skipped");
        }
        Ok(records)
    }

    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        sqlx::query("INSERT INTO flowstore_patterns (tenant, workflow_id, kind, key, confidence, pattern) VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (tenant, workflow_id, kind, key) DO UPDATE SET confidence = excluded.confidence, pattern = excluded.pattern")
            .bind(tenant.as_str())
            .bind(pattern.workflow_id.as_str())
            .bind(&pattern.kind)
            .bind(&pattern.key)
            .bind(pattern.confidence)
            .bind(json_text(&pattern, "pattern")?)
            .execute(&self.pool)
            .await
            .op("metrics.put_pattern")?;
        Ok(())
    }
}

/// Writes a pattern: an insert when none was stored (returns `false` if one appeared
/// meanwhile), else an update of the locked row.
async fn write_pattern(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    p: &Pattern,
    fresh: bool,
) -> Result<bool> {
    let sql = if fresh {
        "INSERT INTO flowstore_patterns (tenant, workflow_id, kind, key, confidence, pattern) VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING"
    } else {
        "UPDATE flowstore_patterns SET confidence = $5, pattern = $6::jsonb WHERE tenant = $1 AND workflow_id = $2 AND kind = $3 AND key = $4"
    };
    let done = sqlx::query(sql)
        .bind(tenant.as_str())
        .bind(p.workflow_id.as_str())
        .bind(&p.kind)
        .bind(&p.key)
        .bind(p.confidence)
        .bind(json_text(p, "pattern")?)
        .execute(&mut **tx)
        .await
        .op("metrics.upsert_pattern")?;
    Ok(done.rows_affected() == 1)
}
