//! Incremental aggregates (spec M2, M3): exact count, sum, min, max and mean, plus the
//! quantile sketch. Adapters store one [`Distribution`] per (workflow, version) and
//! per custom value, and fold each recorded run into it; summaries read it back
//! without touching the runs.

use serde::{Deserialize, Serialize};

use crate::rules::sketch::QuantileSketch;

/// The running state of one numeric distribution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Distribution {
    /// Values added.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Smallest value, when any.
    pub min: Option<f64>,
    /// Largest value, when any.
    pub max: Option<f64>,
    /// Quantile sketch of all values.
    pub sketch: QuantileSketch,
}

/// What a summary shows of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DistributionSummary {
    /// Values added.
    pub count: u64,
    /// Exact minimum.
    pub min: f64,
    /// Exact maximum.
    pub max: f64,
    /// Exact mean.
    pub mean: f64,
    /// Median, within 1%.
    pub p50: f64,
    /// 95th percentile, within 1%.
    pub p95: f64,
    /// 99th percentile, within 1%.
    pub p99: f64,
}

impl Distribution {
    /// Folds one value in; non-finite values are ignored.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.sketch.add(v);
    }

    /// Folds another distribution in (e.g. all versions of a workflow).
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sketch.merge(&other.sketch);
    }

    /// The summary, or `None` when nothing was added. Quantiles are clamped to the
    /// exact min and max.
    #[must_use]
    pub fn summary(&self) -> Option<DistributionSummary> {
        let (min, max) = (self.min?, self.max?);
        if self.count == 0 {
            return None;
        }
        let q = |p: f64| self.sketch.quantile(p).unwrap_or(min).clamp(min, max);
        #[allow(clippy::cast_precision_loss)]
        let mean = self.sum / self.count as f64;
        Some(DistributionSummary {
            count: self.count,
            min,
            max,
            mean,
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Distribution;

    fn of(values: &[f64]) -> Distribution {
        let mut d = Distribution::default();
        for v in values {
            d.add(*v);
        }
        d
    }

    #[test]
    fn exact_figures_and_ignored_values() {
        /// Values in, then (count, min, max, mean) out.
        type Case<'a> = (&'a [f64], Option<(u64, f64, f64, f64)>);
        let cases: [Case<'_>; 4] = [
            (&[], None),
            (&[f64::NAN, f64::INFINITY], None),
            (&[5.0], Some((1, 5.0, 5.0, 5.0))),
            (&[1.0, 2.0, 3.0, 4.0, f64::NAN], Some((4, 1.0, 4.0, 2.5))),
        ];
        for (values, want) in cases {
            let got = of(values)
                .summary()
                .map(|s| (s.count, s.min, s.max, s.mean));
            assert_eq!(got, want, "{values:?}");
        }
    }

    #[test]
    fn merging_equals_adding_everything() {
        let (a, b) = ([1.0, 9.0, 3.0], [0.5, 7.0]);
        let mut merged = of(&a);
        merged.merge(&of(&b));
        let all = of(&[1.0, 9.0, 3.0, 0.5, 7.0]);
        let (m, w) = (merged.summary(), all.summary());
        assert_eq!(
            m.map(|s| (s.count, s.min, s.max)),
            w.map(|s| (s.count, s.min, s.max))
        );
        let mut empty = Distribution::default();
        empty.merge(&of(&[2.0]));
        assert_eq!(empty.summary().map(|s| s.min), Some(2.0));
    }

    #[test]
    fn quantiles_stay_within_min_and_max() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let s = of(&values).summary();
        let s = s.unwrap_or_else(|| panic!("a summary"));
        for q in [s.p50, s.p95, s.p99] {
            assert!((1.0..=1000.0).contains(&q), "{q}");
        }
        assert!((s.p50 - 500.0).abs() <= 10.0, "p50 {}", s.p50);
        assert!((s.p99 - 990.0).abs() <= 15.0, "p99 {}", s.p99);
    }
}
