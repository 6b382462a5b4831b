//! Metrics in SQLite (M1-M6). Recording a run is one transaction: the record (its
//! primary key makes recording idempotent), the folded aggregates, the points.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::{Row, Sqlite, Transaction};
use storage_ports::MetricsTransfer;
use storage_ports::{
    Baseline, Distribution, DistributionSummary, Error, MetricName, MetricSummary, MetricsStore,
    Pattern, PatternObservation, Result, RunAggregate, RunMetric, SeriesBucket, SeriesQuery,
    TenantId, Timestamp, WorkflowId,
};

use crate::error::SqlxResultExt;
use crate::SqliteStore;

fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::corrupt(format!("stored {what} cannot be read: {e}")))
}

fn encode<T: serde::Serialize>(v: &T, what: &str) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be stored: {e}")))
}

/// Reads, folds and writes one JSON state row inside the transaction.
async fn fold<T: DeserializeOwned + serde::Serialize + Default>(
    tx: &mut Transaction<'_, Sqlite>,
    select: &'static str,
    upsert: &'static str,
    keys: (&str, &str, &str),
    apply: impl FnOnce(&mut T),
) -> Result<()> {
    let current: Option<String> = sqlx::query_scalar(select)
        .bind(keys.0)
        .bind(keys.1)
        .bind(keys.2)
        .fetch_optional(&mut **tx)
        .await
        .op("metrics.record")?;
    let mut state: T = match current {
        Some(s) => decode(&s, "aggregate")?,
        None => T::default(),
    };
    apply(&mut state);
    sqlx::query(upsert)
        .bind(keys.0)
        .bind(keys.1)
        .bind(keys.2)
        .bind(encode(&state, "aggregate")?)
        .execute(&mut **tx)
        .await
        .op("metrics.record")?;
    Ok(())
}

#[async_trait]
impl MetricsStore for SqliteStore {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        metric.validate()?;
        let t = tenant.as_str();
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("metrics.record")?;
        // The write comes first: it takes the write lock and decides idempotence.
        let inserted = sqlx::query("INSERT INTO flowstore_metric_records (tenant, run_id, record) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(t)
            .bind(metric.run_id.as_str())
            .bind(encode(&metric, "metric record")?)
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
            "SELECT state FROM flowstore_metric_aggregates WHERE tenant = ? AND workflow_id = ? AND version = ?",
            "INSERT INTO flowstore_metric_aggregates (tenant, workflow_id, version, state) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state",
            (t, metric.workflow_id.as_str(), &version),
            |a| a.add(&metric),
        )
        .await?;
        for (name, v) in &metric.values {
            fold::<Distribution>(
                &mut tx,
                "SELECT state FROM flowstore_metric_values WHERE tenant = ? AND workflow_id = ? AND name = ?",
                "INSERT INTO flowstore_metric_values (tenant, workflow_id, name, state) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state",
                (t, metric.workflow_id.as_str(), name.as_str()),
                |d| d.add(*v),
            )
            .await?;
            sqlx::query("INSERT INTO flowstore_metric_points (tenant, workflow_id, name, at, run_id, value) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(t)
                .bind(metric.workflow_id.as_str())
                .bind(name.as_str())
                .bind(metric.finished_at.as_micros())
                .bind(metric.run_id.as_str())
                .bind(*v)
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
        let states: Vec<String> = sqlx::query_scalar("SELECT state FROM flowstore_metric_aggregates WHERE tenant = ? AND workflow_id = ? AND (? IS NULL OR version = ?)")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(version.map(i64::from))
            .bind(version.map(i64::from))
            .fetch_all(&self.pool)
            .await
            .op("metrics.summary")?;
        let mut total = RunAggregate::default();
        for s in &states {
            total.merge(&decode::<RunAggregate>(s, "aggregate")?);
        }
        Ok(total.summary())
    }

    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM flowstore_metric_values WHERE tenant = ? AND workflow_id = ? AND name = ?")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .op("metrics.value_summary")?;
        Ok(state
            .map(|s| decode::<Distribution>(&s, "value aggregate"))
            .transpose()?
            .and_then(|d| d.summary()))
    }

    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        query.validate()?;
        let rows = sqlx::query("SELECT at, value FROM flowstore_metric_points WHERE tenant = ? AND workflow_id = ? AND name = ? AND at >= ? AND at < ? ORDER BY at")
            .bind(tenant.as_str())
            .bind(query.workflow_id.as_str())
            .bind(query.name.as_str())
            .bind(query.from.as_micros())
            .bind(query.to.as_micros())
            .fetch_all(&self.pool)
            .await
            .op("metrics.series")?;
        let points = rows
            .iter()
            .map(|r| {
                Ok((
                    Timestamp::from_micros(r.try_get("at").op("metrics.series")?),
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
        let values: Vec<f64> = sqlx::query_scalar("SELECT value FROM flowstore_metric_points WHERE tenant = ? AND workflow_id = ? AND name = ? ORDER BY at DESC, run_id DESC LIMIT ?")
            .bind(tenant.as_str())
            .bind(workflow.as_str())
            .bind(name.as_str())
            .bind(i64::try_from(last_n).unwrap_or(i64::MAX))
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
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("metrics.upsert_pattern")?;
        // Write first (a no-op touch) so the read below happens under the write lock.
        sqlx::query("UPDATE flowstore_patterns SET confidence = confidence WHERE tenant = ? AND workflow_id = ? AND kind = ? AND key = ?")
            .bind(tenant.as_str())
            .bind(observation.workflow_id.as_str())
            .bind(&observation.kind)
            .bind(&observation.key)
            .execute(&mut *tx)
            .await
            .op("metrics.upsert_pattern")?;
        let previous: Option<String> = sqlx::query_scalar("SELECT pattern FROM flowstore_patterns WHERE tenant = ? AND workflow_id = ? AND kind = ? AND key = ?")
            .bind(tenant.as_str())
            .bind(observation.workflow_id.as_str())
            .bind(&observation.kind)
            .bind(&observation.key)
            .fetch_optional(&mut *tx)
            .await
            .op("metrics.upsert_pattern")?;
        let previous = previous
            .map(|p| decode::<Pattern>(&p, "pattern"))
            .transpose()?;
        let next = Pattern::upserted(previous.as_ref(), observation);
        write_pattern(&mut tx, tenant, &next).await?;
        tx.commit().await.op("metrics.upsert_pattern")?;
        Ok(next)
    }

    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT pattern FROM flowstore_patterns WHERE tenant = ? AND (? IS NULL OR workflow_id = ?)")
            .bind(tenant.as_str())
            .bind(workflow.map(WorkflowId::as_str))
            .bind(workflow.map(WorkflowId::as_str))
            .fetch_all(&self.pool)
            .await
            .op("metrics.patterns")?;
        // A damaged pattern is logged and skipped (W10).
        let (mut out, damaged) = storage_ports::adapter_kit::readable(
            rows.iter().map(|p| decode::<Pattern>(p, "pattern")),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged pattern is skipped");
        }
        out.sort_by(Pattern::listing_order);
        Ok(out)
    }
}

#[async_trait]
impl MetricsTransfer for SqliteStore {
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT record FROM flowstore_metric_records WHERE tenant = ? ORDER BY run_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .op("metrics.export_records")?;
        let (records, damaged) =
            storage_ports::adapter_kit::readable(rows.iter().map(|r| decode(r, "metric record")))?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged metric record is skipped");
        }
        Ok(records)
    }

    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("metrics.put_pattern")?;
        write_pattern(&mut tx, tenant, &pattern).await?;
        tx.commit().await.op("metrics.put_pattern")
    }
}

async fn write_pattern(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    p: &Pattern,
) -> Result<()> {
    sqlx::query("INSERT INTO flowstore_patterns (tenant, workflow_id, kind, key, confidence, pattern) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET confidence = excluded.confidence, pattern = excluded.pattern")
        .bind(tenant.as_str())
        .bind(p.workflow_id.as_str())
        .bind(&p.kind)
        .bind(&p.key)
        .bind(p.confidence)
        .bind(encode(p, "pattern")?)
        .execute(&mut **tx)
        .await
        .op("metrics.upsert_pattern")?;
    Ok(())
}
