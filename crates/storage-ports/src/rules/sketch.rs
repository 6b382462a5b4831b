//! A mergeable relative-error quantile sketch (DDSketch; spec M2).
//!
//! Values fall into logarithmic bins of ratio `gamma = (1 + a) / (1 - a)`; any quantile
//! read back is within relative error `a` of the true one. With `a = 0.5%` a sketch of
//! a million durations is a few hundred bins, so metrics summaries never scan runs,
//! and two sketches merge by adding their bins (one per backend shard, per version).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Relative accuracy of every sketch: 0.5%, half the 1% the spec allows, so that
/// clamping and float rounding stay well inside the bound.
pub const RELATIVE_ACCURACY: f64 = 0.005;

/// The sketch: counts per logarithmic bin, for positive and negative values, and zeros.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QuantileSketch {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pos: BTreeMap<i32, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    neg: BTreeMap<i32, u64>,
    #[serde(default)]
    zero: u64,
}

/// Values closer to zero than this count as zero.
const MIN_MAGNITUDE: f64 = 1e-9;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn bin_of(magnitude: f64) -> i32 {
    // Magnitudes are finite and >= MIN_MAGNITUDE, so the bin fits an i32 easily.
    #[allow(clippy::cast_possible_truncation)]
    let i = (magnitude.ln() / gamma().ln()).ceil() as i32;
    i
}

fn value_of(bin: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(bin) / (g + 1.0)
}

impl QuantileSketch {
    /// An empty sketch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; NaN and infinities are ignored.
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if value.abs() < MIN_MAGNITUDE {
            self.zero += 1;
        } else if value > 0.0 {
            *self.pos.entry(bin_of(value)).or_default() += 1;
        } else {
            *self.neg.entry(bin_of(-value)).or_default() += 1;
        }
    }

    /// Adds every bin of `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        for (b, c) in &other.pos {
            *self.pos.entry(*b).or_default() += c;
        }
        for (b, c) in &other.neg {
            *self.neg.entry(*b).or_default() += c;
        }
        self.zero += other.zero;
    }

    /// How many values were added.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.zero + self.pos.values().sum::<u64>() + self.neg.values().sum::<u64>()
    }

    /// The `q`-quantile (`0.0..=1.0`), within [`RELATIVE_ACCURACY`]; `None` when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        // Rank of the wanted value among n sorted values (0-based, lower median).
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0_u64;
        for (b, c) in self.neg.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-value_of(*b));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (b, c) in &self.pos {
            seen += c;
            if seen > rank {
                return Some(value_of(*b));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent_and_merge() {
        let mut a = QuantileSketch::new();
        let mut b = QuantileSketch::new();
        let mut all: Vec<f64> = Vec::new();
        for i in 1..=10_000_u32 {
            let v = f64::from(i).powf(1.7) / 10.0;
            all.push(v);
            if i % 2 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
        }
        a.merge(&b);
        all.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 0.99] {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let exact = all[(q * (all.len() - 1) as f64).floor() as usize];
            let est = a.quantile(q).unwrap_or(f64::NAN);
            assert!(
                ((est - exact) / exact).abs() <= 0.01,
                "q={q} est={est} exact={exact}"
            );
        }
        assert_eq!(a.count(), 10_000);
    }
}
