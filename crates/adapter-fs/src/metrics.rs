//! Metrics as files (M1-M6).
//!
//! Per workflow, `<root>/<tenant>/metrics/<workflow>/`:
//! - `records/<run>.json`: one file per recorded run; its existence makes `record`
//!   idempotent (M1);
//! - `aggregate.json`: the aggregates folded in on record (per version, and the
//!   distribution of each custom value), so summaries read one file, not the records;
//! - `patterns.json`: the workflow's patterns (M4).
//!
//! Changes hold `<workflow>/.lock`, so concurrent recorders lose nothing (M5), across
//! processes too. A record first writes a `.pending` marker, then the record, then the
//! aggregate, then removes the marker: whoever finds a marker (a crash in between)
//! rebuilds the aggregate from the records under the lock. The aggregate is thus never
//! behind or ahead of the records once read.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use storage_ports::MetricsTransfer;
use storage_ports::{
    Baseline, Distribution, DistributionSummary, ErrorKind, MetricName, MetricSummary,
    MetricsStore, Pattern, PatternObservation, Result, RunAggregate, RunId, RunMetric,
    SeriesBucket, SeriesQuery, TenantId, WorkflowId,
};

use crate::files::{
    corrupt, create_private_dir, io_error, lock_exclusive, read_json, remove_durable, to_json,
    write_atomic,
};
use crate::FsStore;

const RECORDS: &str = "records";
const AGGREGATE: &str = "aggregate.json";
const PATTERNS: &str = "patterns.json";
const PENDING: &str = ".pending";
const LOCK: &str = ".lock";

/// What `aggregate.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WorkflowAggregate {
    /// Per version.
    versions: BTreeMap<u32, RunAggregate>,
    /// Per custom value (M3).
    values: BTreeMap<MetricName, Distribution>,
}

impl WorkflowAggregate {
    fn add(&mut self, m: &RunMetric) {
        self.versions.entry(m.version).or_default().add(m);
        for (name, v) in &m.values {
            self.values.entry(name.clone()).or_default().add(*v);
        }
    }
}

impl FsStore {
    pub(crate) fn metrics_dir(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str()).join("metrics")
    }

    fn workflow_metrics_dir(&self, tenant: &TenantId, workflow: &WorkflowId) -> PathBuf {
        self.metrics_dir(tenant).join(workflow.as_str())
    }

    /// Every readable record of a workflow; damaged files are logged and skipped.
    pub(crate) fn metric_records(dir: &Path) -> Result<Vec<RunMetric>> {
        let records = dir.join(RECORDS);
        let entries = match fs::read_dir(&records) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", &records, &e)),
        };
        let mut out = Vec::new();
        for entry in entries.filter_map(std::result::Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_json::<RunMetric>(&path) {
                Ok(m) => out.push(m),
                Err(e) if e.kind() == ErrorKind::CorruptData => {
                    tracing::warn!(error = %e, "skipping a damaged metric record");
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Rebuilds `aggregate.json` from the records and clears the marker; lock held.
    fn rebuild_aggregate(dir: &Path) -> Result<WorkflowAggregate> {
        let mut agg = WorkflowAggregate::default();
        for m in Self::metric_records(dir)? {
            agg.add(&m);
        }
        write_atomic(&dir.join(AGGREGATE), &to_json(&agg)?)?;
        match remove_durable(&dir.join(PENDING)) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(agg)
    }

    /// The aggregate as of the last completed record; lock held.
    fn load_aggregate(dir: &Path) -> Result<WorkflowAggregate> {
        if dir.join(PENDING).exists() {
            return Self::rebuild_aggregate(dir);
        }
        match read_json(&dir.join(AGGREGATE)) {
            Ok(a) => Ok(a),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(WorkflowAggregate::default()),
            Err(e) if e.kind() == ErrorKind::CorruptData => {
                tracing::warn!(error = %e, "rebuilding a damaged metrics aggregate");
                Self::rebuild_aggregate(dir)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the aggregate, repairing it first if a recorder crashed.
    fn read_aggregate(dir: &Path) -> Result<WorkflowAggregate> {
        if !dir.is_dir() {
            return Ok(WorkflowAggregate::default());
        }
        if dir.join(PENDING).exists() {
            let _lock = lock_exclusive(&dir.join(LOCK))?;
            return Self::load_aggregate(dir);
        }
        Self::load_aggregate(dir)
    }

    fn record_blocking(&self, tenant: &TenantId, metric: &RunMetric) -> Result<bool> {
        let dir = self.workflow_metrics_dir(tenant, &metric.workflow_id);
        create_private_dir(&dir.join(RECORDS))?;
        let _lock = lock_exclusive(&dir.join(LOCK))?;
        let mut agg = Self::load_aggregate(&dir)?;
        let record = record_path(&dir, &metric.run_id);
        if record.exists() {
            return Ok(false);
        }
        write_atomic(&dir.join(PENDING), metric.run_id.as_str().as_bytes())?;
        write_atomic(&record, &to_json(metric)?)?;
        agg.add(metric);
        write_atomic(&dir.join(AGGREGATE), &to_json(&agg)?)?;
        remove_durable(&dir.join(PENDING))?;
        Ok(true)
    }

    /// The entries of `patterns.json` as stored, each decoded on its own later, so a
    /// damaged entry costs only itself (W10).
    fn pattern_entries(dir: &Path) -> Result<Vec<serde_json::Value>> {
        match read_json(&dir.join(PATTERNS)) {
            Ok(p) => Ok(p),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The readable patterns of one workflow: a damaged entry, or a damaged file, is
    /// logged and skipped (W10).
    pub(crate) fn read_patterns(dir: &Path) -> Result<Vec<Pattern>> {
        let path = dir.join(PATTERNS);
        let entries = match Self::pattern_entries(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::CorruptData => {
                tracing::warn!(error = %e, "a damaged patterns file is skipped");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            match serde_json::from_value::<Pattern>(entry) {
                Ok(p) => out.push(p),
                Err(e) => {
                    let e = corrupt(&path, &format!("entry {}: {e}", i + 1));
                    tracing::warn!(error = %e, "a damaged pattern is skipped");
                }
            }
        }
        Ok(out)
    }

    /// Replaces the pattern (`workflow`, `kind`, `key`) with what `change` makes of the
    /// stored one, under the workflow's lock.
    fn change_pattern(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        (kind, key): (&str, &str),
        change: impl FnOnce(Option<&Pattern>) -> Pattern,
    ) -> Result<Pattern> {
        let dir = self.workflow_metrics_dir(tenant, workflow);
        create_private_dir(&dir)?;
        let _lock = lock_exclusive(&dir.join(LOCK))?;
        // Entries are rewritten as stored: a damaged one is kept, never dropped.
        let mut all = Self::pattern_entries(&dir)?;
        let decoded: Vec<Option<Pattern>> = all
            .iter()
            .map(|v| serde_json::from_value(v.clone()).ok())
            .collect();
        let at = decoded
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.kind == kind && p.key == key));
        let next = change(at.and_then(|i| decoded[i].as_ref()));
        let value = serde_json::to_value(&next)
            .map_err(|e| storage_ports::Error::invalid_input(format!("pattern: {e}")))?;
        match at {
            Some(i) => all[i] = value,
            None => all.push(value),
        }
        write_atomic(&dir.join(PATTERNS), &to_json(&all)?)?;
        Ok(next)
    }

    /// Workflow directories of a tenant's metrics.
    pub(crate) fn metric_workflows(&self, tenant: &TenantId) -> Result<Vec<PathBuf>> {
        let dir = self.metrics_dir(tenant);
        match fs::read_dir(&dir) {
            Ok(e) => Ok(e
                .filter_map(std::result::Result::ok)
                .filter(|e| {
                    e.file_name()
                        .into_string()
                        .is_ok_and(|n| WorkflowId::new(n).is_ok())
                })
                .map(|e| e.path())
                .collect()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error("listing", &dir, &e)),
        }
    }
}

fn record_path(dir: &Path, run: &RunId) -> PathBuf {
    dir.join(RECORDS).join(format!("{run}.json"))
}

#[async_trait]
impl MetricsStore for FsStore {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        metric.validate()?;
        let t = tenant.clone();
        self.blocking(move |s| s.record_blocking(&t, &metric)).await
    }

    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        let dir = self.workflow_metrics_dir(tenant, workflow);
        self.blocking(move |_| {
            let agg = Self::read_aggregate(&dir)?;
            let mut total = RunAggregate::default();
            for (v, a) in &agg.versions {
                if version.is_none_or(|want| want == *v) {
                    total.merge(a);
                }
            }
            Ok(total.summary())
        })
        .await
    }

    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        let dir = self.workflow_metrics_dir(tenant, workflow);
        let name = name.clone();
        self.blocking(move |_| {
            Ok(Self::read_aggregate(&dir)?
                .values
                .get(&name)
                .and_then(Distribution::summary))
        })
        .await
    }

    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        query.validate()?;
        let dir = self.workflow_metrics_dir(tenant, &query.workflow_id);
        self.blocking(move |_| {
            let records = Self::metric_records(&dir)?;
            let points = records
                .iter()
                .filter_map(|r| r.values.get(&query.name).map(|v| (r.finished_at, *v)));
            Ok(query.bucketize(points))
        })
        .await
    }

    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>> {
        let dir = self.workflow_metrics_dir(tenant, workflow);
        let name = name.clone();
        self.blocking(move |_| {
            Ok(Baseline::of_latest(
                &Self::metric_records(&dir)?,
                &name,
                last_n,
            ))
        })
        .await
    }

    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern> {
        observation.validate()?;
        self.limit.check_pattern(&observation)?;
        let t = tenant.clone();
        self.blocking(move |s| {
            let (w, kind, key) = (
                observation.workflow_id.clone(),
                observation.kind.clone(),
                observation.key.clone(),
            );
            s.change_pattern(&t, &w, (&kind, &key), |prev| {
                Pattern::upserted(prev, observation)
            })
        })
        .await
    }

    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        let t = tenant.clone();
        let w = workflow.cloned();
        self.blocking(move |s| {
            let dirs = match &w {
                Some(w) => vec![s.workflow_metrics_dir(&t, w)],
                None => s.metric_workflows(&t)?,
            };
            let mut out = Vec::new();
            for d in dirs {
                out.extend(Self::read_patterns(&d)?);
            }
            out.sort_by(Pattern::listing_order);
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl MetricsTransfer for FsStore {
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        let t = tenant.clone();
        self.blocking(move |s| {
            let mut out = Vec::new();
            for d in s.metric_workflows(&t)? {
                out.extend(Self::metric_records(&d)?);
            }
            out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
            Ok(out)
        })
        .await
    }

    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        let t = tenant.clone();
        self.blocking(move |s| {
            let (w, kind, key) = (
                pattern.workflow_id.clone(),
                pattern.kind.clone(),
                pattern.key.clone(),
            );
            s.change_pattern(&t, &w, (&kind, &key), |_| pattern)
                .map(|_| ())
        })
        .await
    }
}
