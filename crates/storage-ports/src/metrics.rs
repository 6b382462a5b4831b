//! The metrics port (spec M1-M6): incremental aggregates, custom values, series,
//! baselines and patterns.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{MetricName, RunId, TenantId, WorkflowId};
use crate::rules::aggregate::{Distribution, DistributionSummary};
use crate::run::RunStatus;
use crate::time::Timestamp;

/// One finished run's measurements (M1, M3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetric {
    /// The run; recording it twice changes nothing.
    pub run_id: RunId,
    /// Workflow.
    pub workflow_id: WorkflowId,
    /// Version.
    pub version: u32,
    /// Terminal status.
    pub status: RunStatus,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// When the run finished.
    pub finished_at: Timestamp,
    /// Custom named values, e.g. tokens or cost.
    #[serde(default)]
    pub values: BTreeMap<MetricName, f64>,
}

impl RunMetric {
    /// Checks the status is terminal and the numbers are finite.
    ///
    /// # Errors
    /// `InvalidInput` naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if !self.status.is_terminal() {
            return Err(Error::invalid_input(
                "metrics are recorded for finished runs only",
            ));
        }
        if !self.duration_ms.is_finite() || self.duration_ms < 0.0 {
            return Err(Error::invalid_input(
                "duration_ms must be a finite number >= 0",
            ));
        }
        self.finished_at.storable("metric finish time")?;
        if let Some((k, _)) = self.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid_input(format!(
                "metric value {k} must be a finite number"
            )));
        }
        Ok(())
    }
}

/// The running aggregate of one (workflow, version): what adapters store and fold into.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunAggregate {
    /// Succeeded runs.
    pub succeeded: u64,
    /// Failed runs.
    pub failed: u64,
    /// Cancelled runs.
    pub cancelled: u64,
    /// Latest finish time seen.
    pub last_run_at: Option<Timestamp>,
    /// Durations in milliseconds.
    pub duration_ms: Distribution,
}

impl RunAggregate {
    /// Folds one run in.
    pub fn add(&mut self, m: &RunMetric) {
        match m.status {
            RunStatus::Succeeded => self.succeeded += 1,
            RunStatus::Failed => self.failed += 1,
            RunStatus::Cancelled | RunStatus::Running => self.cancelled += 1,
        }
        self.last_run_at = Some(
            self.last_run_at
                .map_or(m.finished_at, |t| t.max(m.finished_at)),
        );
        self.duration_ms.add(m.duration_ms);
    }

    /// Folds another aggregate in.
    pub fn merge(&mut self, o: &Self) {
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
        self.last_run_at = match (self.last_run_at, o.last_run_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.duration_ms.merge(&o.duration_ms);
    }

    /// The summary shown to users (M2).
    #[must_use]
    pub fn summary(&self) -> MetricSummary {
        let runs = self.succeeded + self.failed + self.cancelled;
        #[allow(clippy::cast_precision_loss)]
        let success_rate = if runs == 0 {
            0.0
        } else {
            self.succeeded as f64 / runs as f64
        };
        MetricSummary {
            runs,
            succeeded: self.succeeded,
            failed: self.failed,
            cancelled: self.cancelled,
            success_rate,
            last_run_at: self.last_run_at,
            duration_ms: self.duration_ms.summary(),
        }
    }
}

/// A workflow's (or one version's) summary (M2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Runs recorded.
    pub runs: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// `succeeded / runs`, 0 without runs.
    pub success_rate: f64,
    /// Latest finish time.
    pub last_run_at: Option<Timestamp>,
    /// Durations, when any run was recorded.
    pub duration_ms: Option<DistributionSummary>,
}

/// One bucket of a time series (M3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBucket {
    /// Bucket start (inclusive).
    pub start: Timestamp,
    /// Values in the bucket.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// A time-series request: values of `name` recorded in `[from, to)`, in buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// Workflow.
    pub workflow_id: WorkflowId,
    /// Custom value name.
    pub name: MetricName,
    /// Range start.
    pub from: Timestamp,
    /// Range end (exclusive).
    pub to: Timestamp,
    /// Bucket width.
    pub bucket: Duration,
}

impl SeriesQuery {
    /// Checks the range and bucket.
    ///
    /// # Errors
    /// `InvalidInput` for an empty range, a zero bucket, or more than 10,000 buckets.
    pub fn validate(&self) -> Result<()> {
        if self.to <= self.from {
            return Err(Error::invalid_input(
                "series range is empty: `to` must be after `from`",
            ));
        }
        let width = i64::try_from(self.bucket.as_micros()).unwrap_or(i64::MAX);
        if width == 0 {
            return Err(Error::invalid_input("series bucket width must be positive"));
        }
        if (self.to.as_micros() - self.from.as_micros()) / width > 10_000 {
            return Err(Error::invalid_input(
                "series would have more than 10,000 buckets",
            ));
        }
        Ok(())
    }

    /// Buckets `(time, value)` points into non-empty buckets, ascending.
    #[must_use]
    pub fn bucketize(
        &self,
        points: impl IntoIterator<Item = (Timestamp, f64)>,
    ) -> Vec<SeriesBucket> {
        let width = i64::try_from(self.bucket.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut buckets: BTreeMap<i64, SeriesBucket> = BTreeMap::new();
        for (t, v) in points {
            if t < self.from || t >= self.to {
                continue;
            }
            let i = (t.as_micros() - self.from.as_micros()) / width;
            let b = buckets.entry(i).or_insert_with(|| SeriesBucket {
                start: Timestamp::from_micros(self.from.as_micros() + i * width),
                count: 0,
                sum: 0.0,
                min: v,
                max: v,
            });
            b.count += 1;
            b.sum += v;
            b.min = b.min.min(v);
            b.max = b.max.max(v);
        }
        buckets.into_values().collect()
    }
}

/// A baseline to compare a new value with (M3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Values it is based on.
    pub samples: usize,
    /// Their median.
    pub median: f64,
    /// Their mean.
    pub mean: f64,
}

impl Baseline {
    /// The baseline of `values` (most recent last), or `None` when empty.
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        #[allow(clippy::cast_precision_loss)]
        let mean = v.iter().sum::<f64>() / n as f64;
        Some(Self {
            samples: n,
            median,
            mean,
        })
    }

    /// The baseline of the `last_n` values of `name` recorded in `records`, latest by
    /// finish time (ties by run id), for adapters that scan their records.
    #[must_use]
    pub fn of_latest<'a>(
        records: impl IntoIterator<Item = &'a RunMetric>,
        name: &MetricName,
        last_n: usize,
    ) -> Option<Self> {
        let mut points: Vec<_> = records
            .into_iter()
            .filter_map(|r| r.values.get(name).map(|v| ((r.finished_at, &r.run_id), *v)))
            .collect();
        points.sort_by(|a, b| a.0.cmp(&b.0));
        let recent: Vec<f64> = points.iter().rev().take(last_n).map(|p| p.1).collect();
        Self::of(&recent)
    }

    /// `value / median`: above 1 means worse than usual for costs and durations.
    #[must_use]
    pub fn ratio(&self, value: f64) -> Option<f64> {
        (self.median != 0.0).then(|| value / self.median)
    }
}

/// An observed pattern to upsert (M4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternObservation {
    /// Workflow.
    pub workflow_id: WorkflowId,
    /// Kind, e.g. `slow_node`.
    pub kind: String,
    /// Key within the kind, e.g. the node id.
    pub key: String,
    /// Text for people.
    pub description: String,
    /// Structured detail.
    pub data: Value,
    /// Confidence in `0.0..=1.0`.
    pub confidence: f64,
    /// When observed.
    pub seen_at: Timestamp,
}

impl PatternObservation {
    /// Checks lengths and confidence.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.kind.is_empty()
            || self.kind.len() > 128
            || self.key.is_empty()
            || self.key.len() > 512
        {
            return Err(Error::invalid_input(
                "pattern kind must be 1-128 bytes and key 1-512 bytes",
            ));
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(Error::invalid_input(
                "pattern confidence must be within 0.0..=1.0",
            ));
        }
        Ok(())
    }
}

/// A stored pattern (M4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Workflow.
    pub workflow_id: WorkflowId,
    /// Kind.
    pub kind: String,
    /// Key.
    pub key: String,
    /// Latest description.
    pub description: String,
    /// Latest data.
    pub data: Value,
    /// Latest confidence.
    pub confidence: f64,
    /// How many times observed.
    pub occurrences: u64,
    /// First observation.
    pub first_seen: Timestamp,
    /// Latest observation.
    pub last_seen: Timestamp,
}

impl Pattern {
    /// The pattern after `obs`, given what was stored (`None` the first time).
    #[must_use]
    pub fn upserted(previous: Option<&Self>, obs: PatternObservation) -> Self {
        let (occurrences, first_seen, last_seen) = match previous {
            Some(p) => (
                p.occurrences + 1,
                p.first_seen.min(obs.seen_at),
                p.last_seen.max(obs.seen_at),
            ),
            None => (1, obs.seen_at, obs.seen_at),
        };
        Self {
            workflow_id: obs.workflow_id,
            kind: obs.kind,
            key: obs.key,
            description: obs.description,
            data: obs.data,
            confidence: obs.confidence,
            occurrences,
            first_seen,
            last_seen,
        }
    }

    /// Listing order: confidence descending, then kind and key.
    #[must_use]
    pub fn listing_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.key.cmp(&b.key))
    }
}

/// Aggregates, updated after each run and read without scanning runs.
///
/// # Behavior
/// - `record` is idempotent per run id (M1) and loses nothing under concurrency (M5).
/// - Every operation sees only `tenant`'s data (M6).
#[async_trait]
pub trait MetricsStore: Send + Sync + std::fmt::Debug {
    /// Records a run; returns `false` when the run was already recorded (M1).
    ///
    /// # Errors
    /// `InvalidInput` (see [`RunMetric::validate`]).
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool>;

    /// Summary of one version, or of all versions with `None` (M2).
    ///
    /// # Errors
    /// Backend errors. A workflow without runs has a summary of zeros.
    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary>;

    /// Summary of a custom value over all runs of a workflow (M3); `None` without values.
    ///
    /// # Errors
    /// Backend errors.
    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>>;

    /// Time series of a custom value (M3), non-empty buckets ascending.
    ///
    /// # Errors
    /// `InvalidInput` (see [`SeriesQuery::validate`]).
    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>>;

    /// Baseline of the last `last_n` values of `name` by finish time (M3).
    ///
    /// # Errors
    /// Backend errors.
    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>>;

    /// Upserts a pattern per (workflow, kind, key) (M4).
    ///
    /// # Errors
    /// `InvalidInput` (see [`PatternObservation::validate`]).
    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern>;

    /// Patterns, of one workflow or all, by confidence descending (M4).
    ///
    /// # Errors
    /// Backend errors.
    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>>;
}

/// Moving metrics between backends (O4): kept apart from [`MetricsStore`] so that the
/// hot path stays small and layers pass these calls through.
#[async_trait]
pub trait MetricsTransfer: Send + Sync + std::fmt::Debug {
    /// Recorded run metrics in run-id order, for export (O4).
    ///
    /// # Errors
    /// Backend errors.
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>>;

    /// Writes a pattern as it is, counts and times included (import, O4).
    ///
    /// # Errors
    /// Backend errors.
    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()>;
}

impl crate::operation::Operation {
    /// [`MetricsStore::record`]: recording a run twice changes nothing (M1).
    pub const METRICS_RECORD: Self = Self::new(
        "metrics.record",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
    /// [`MetricsStore::summary`].
    pub const METRICS_SUMMARY: Self = Self::new(
        "metrics.summary",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
    /// [`MetricsStore::value_summary`].
    pub const METRICS_VALUE_SUMMARY: Self = Self::new(
        "metrics.value_summary",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
    /// [`MetricsStore::series`].
    pub const METRICS_SERIES: Self = Self::new(
        "metrics.series",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
    /// [`MetricsStore::baseline`].
    pub const METRICS_BASELINE: Self = Self::new(
        "metrics.baseline",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
    /// [`MetricsStore::upsert_pattern`]: a repeat would count the observation twice.
    pub const METRICS_UPSERT_PATTERN: Self = Self::new(
        "metrics.upsert_pattern",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Never,
    );
    /// [`MetricsStore::patterns`].
    pub const METRICS_PATTERNS: Self = Self::new(
        "metrics.patterns",
        crate::operation::Port::Metrics,
        crate::operation::Repeat::Safe,
    );
}
