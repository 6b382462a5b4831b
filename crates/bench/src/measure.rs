//! Measuring fairly on a shared, noisy machine: ours and the baseline run alternately,
//! round after round, in the same process, and each figure is a median.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

/// One scenario's figures, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Scenario id (P1..P5).
    pub scenario: &'static str,
    /// What is measured.
    pub name: String,
    /// Backend.
    pub backend: &'static str,
    /// Unit of `ours` and `baseline`.
    pub unit: &'static str,
    /// flowstore's median.
    pub ours: f64,
    /// The baseline's median, measured in the same run.
    pub baseline: f64,
    /// What the baseline is.
    pub baseline_name: String,
    /// The ratio the target is about.
    pub ratio: f64,
    /// The target, in words.
    pub target: &'static str,
    /// Whether the target is met.
    pub met: bool,
    /// Sizes and rounds.
    pub sizes: String,
}

/// The median of `xs` (0 for none).
#[must_use]
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `q` quantile of `xs` (nearest rank).
#[must_use]
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// One side of a rotation: given the round, the work of that round, returning how many
/// operations it did.
pub type Side<'a> =
    Box<dyn FnMut(usize) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<u64>> + 'a>> + 'a>;

/// Runs every side once per round, `rounds` times, starting each round one side further
/// on, so that warm-up and drift hit every side alike. Returns each side's median rate
/// (operations per second), in the order given.
///
/// # Errors
/// The first failure of any side.
pub async fn rotate(rounds: usize, sides: &mut [Side<'_>]) -> anyhow::Result<Vec<f64>> {
    let mut rates = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            rates[i].push(rate(sides[i](round)).await?);
        }
    }
    Ok(rates.iter().map(|r| median(r)).collect())
}

async fn rate<F: Future<Output = anyhow::Result<u64>>>(f: F) -> anyhow::Result<f64> {
    let started = Instant::now();
    let n = f.await?;
    #[allow(clippy::cast_precision_loss)]
    Ok(n as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Latencies of `n` calls of `f`, in milliseconds.
///
/// # Errors
/// The first failing call.
pub async fn latencies<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f().await?;
        out.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    Ok(out)
}
