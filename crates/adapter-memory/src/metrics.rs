//! Metrics in memory (M1-M6): aggregates folded in on record, read without scanning.

use async_trait::async_trait;
use storage_ports::MetricsTransfer;
use storage_ports::{
    Baseline, DistributionSummary, MetricName, MetricSummary, MetricsStore, Pattern,
    PatternObservation, Result, RunAggregate, RunMetric, SeriesBucket, SeriesQuery, TenantId,
    WorkflowId,
};

use crate::MemoryStore;

#[async_trait]
impl MetricsStore for MemoryStore {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        metric.validate()?;
        let mut state = self.lock();
        let m = &mut state.tenant(tenant).metrics;
        if m.records.contains_key(&metric.run_id) {
            return Ok(false);
        }
        m.aggregates
            .entry((metric.workflow_id.clone(), metric.version))
            .or_default()
            .add(&metric);
        for (name, v) in &metric.values {
            m.values
                .entry((metric.workflow_id.clone(), name.clone()))
                .or_default()
                .add(*v);
        }
        m.records.insert(metric.run_id.clone(), metric);
        Ok(true)
    }

    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        let mut state = self.lock();
        let m = &state.tenant(tenant).metrics;
        let mut total = RunAggregate::default();
        for ((w, v), agg) in &m.aggregates {
            if w == workflow && version.is_none_or(|want| want == *v) {
                total.merge(agg);
            }
        }
        Ok(total.summary())
    }

    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        let mut state = self.lock();
        let m = &state.tenant(tenant).metrics;
        Ok(m.values
            .get(&(workflow.clone(), name.clone()))
            .and_then(storage_ports::Distribution::summary))
    }

    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        query.validate()?;
        let mut state = self.lock();
        let m = &state.tenant(tenant).metrics;
        let points = m
            .records
            .values()
            .filter(|r| r.workflow_id == query.workflow_id)
            .filter_map(|r| r.values.get(&query.name).map(|v| (r.finished_at, *v)));
        Ok(query.bucketize(points))
    }

    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>> {
        let mut state = self.lock();
        let m = &state.tenant(tenant).metrics;
        Ok(Baseline::of_latest(
            m.records.values().filter(|r| r.workflow_id == *workflow),
            name,
            last_n,
        ))
    }

    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern> {
        observation.validate()?;
        self.limit().check_pattern(&observation)?;
        let mut state = self.lock();
        let m = &mut state.tenant(tenant).metrics;
        let key = (
            observation.workflow_id.clone(),
            observation.kind.clone(),
            observation.key.clone(),
        );
        let next = Pattern::upserted(m.patterns.get(&key), observation);
        m.patterns.insert(key, next.clone());
        Ok(next)
    }

    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        let mut state = self.lock();
        let mut out: Vec<Pattern> = state
            .tenant(tenant)
            .metrics
            .patterns
            .values()
            .filter(|p| workflow.is_none_or(|w| *w == p.workflow_id))
            .cloned()
            .collect();
        out.sort_by(Pattern::listing_order);
        Ok(out)
    }
}

#[async_trait]
impl MetricsTransfer for MemoryStore {
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        Ok(self
            .lock()
            .tenant(tenant)
            .metrics
            .records
            .values()
            .cloned()
            .collect())
    }

    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        let mut state = self.lock();
        let key = (
            pattern.workflow_id.clone(),
            pattern.kind.clone(),
            pattern.key.clone(),
        );
        state.tenant(tenant).metrics.patterns.insert(key, pattern);
        Ok(())
    }
}
