//! M1-M6: metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use storage_ports::{
    MetricName, PatternObservation, RunId, RunMetric, RunStatus, SeriesQuery, Timestamp, WorkflowId,
};

use crate::check::{id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

fn metric(
    wf: &WorkflowId,
    version: u32,
    status: RunStatus,
    duration_ms: f64,
    at: i64,
    values: &[(&str, f64)],
) -> Result<RunMetric, Failure> {
    let mut v = BTreeMap::new();
    for (k, x) in values {
        v.insert(id::<MetricName>(k)?, *x);
    }
    Ok(RunMetric {
        run_id: RunId::generate(),
        workflow_id: wf.clone(),
        version,
        status,
        duration_ms,
        finished_at: Timestamp::from_micros(at),
        values: v,
    })
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-9)
}

/// M1: recording a run updates counts and durations.
pub async fn m1_record_updates_aggregates(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m1")?;
    ensure!(
        ctx.set
            .metrics
            .record(
                &ctx.tenant,
                metric(&wf, 1, RunStatus::Succeeded, 100.0, 1_000, &[])?
            )
            .await?,
        "first record must report new"
    );
    ctx.set
        .metrics
        .record(
            &ctx.tenant,
            metric(&wf, 1, RunStatus::Failed, 300.0, 2_000, &[])?,
        )
        .await?;
    let s = ctx.set.metrics.summary(&ctx.tenant, &wf, None).await?;
    ensure_eq!(
        (s.runs, s.succeeded, s.failed, s.cancelled),
        (2, 1, 1, 0),
        "counts"
    );
    ensure_eq!(s.success_rate, 0.5, "success rate");
    ensure_eq!(
        s.last_run_at,
        Some(Timestamp::from_micros(2_000)),
        "last run"
    );
    let d = s
        .duration_ms
        .ok_or_else(|| Failure("no duration summary".into()))?;
    ensure_eq!(
        (d.min, d.max, d.mean),
        (100.0, 300.0, 200.0),
        "min/max/mean"
    );
    Ok(())
}

/// M1: recording the same run twice changes nothing.
pub async fn m1_recording_a_run_twice_changes_nothing(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m1i")?;
    let m = metric(&wf, 1, RunStatus::Succeeded, 10.0, 1, &[("tokens", 5.0)])?;
    ctx.set.metrics.record(&ctx.tenant, m.clone()).await?;
    let before = ctx.set.metrics.summary(&ctx.tenant, &wf, None).await?;
    ensure!(
        !ctx.set.metrics.record(&ctx.tenant, m).await?,
        "second record must report already recorded"
    );
    ensure_eq!(
        ctx.set.metrics.summary(&ctx.tenant, &wf, None).await?,
        before,
        "summary after re-record"
    );
    Ok(())
}

/// M2: p50/p95/p99 within 1% of the exact values; min/max/mean exact.
pub async fn m2_percentiles_within_one_percent(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m2")?;
    let mut all = Vec::new();
    for i in 1..=1000_u32 {
        let d = f64::from(i * 37 % 1000 + 1).powf(1.5);
        all.push(d);
        ctx.set
            .metrics
            .record(
                &ctx.tenant,
                metric(&wf, 1, RunStatus::Succeeded, d, i64::from(i), &[])?,
            )
            .await?;
    }
    all.sort_by(f64::total_cmp);
    let s = ctx.set.metrics.summary(&ctx.tenant, &wf, Some(1)).await?;
    let d = s
        .duration_ms
        .ok_or_else(|| Failure("no duration summary".into()))?;
    for (q, got) in [(0.5, d.p50), (0.95, d.p95), (0.99, d.p99)] {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let exact = all[(q * 999.0_f64).floor() as usize];
        ensure!(
            close(got, exact, 0.01),
            "p{} = {got}, exact {exact}: beyond 1%",
            q * 100.0
        );
    }
    ensure_eq!((d.min, d.max), (all[0], all[999]), "exact min/max");
    ensure!(
        close(d.mean, all.iter().sum::<f64>() / 1000.0, 1e-9),
        "mean {} is not exact",
        d.mean
    );
    Ok(())
}

/// M2: summaries per version and over all versions.
pub async fn m2_summary_per_version_and_over_all(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m2v")?;
    for (v, n) in [(1_u32, 3), (2, 5)] {
        for i in 0..n {
            ctx.set
                .metrics
                .record(
                    &ctx.tenant,
                    metric(&wf, v, RunStatus::Succeeded, f64::from(v * 10 + i), 1, &[])?,
                )
                .await?;
        }
    }
    ensure_eq!(
        ctx.set
            .metrics
            .summary(&ctx.tenant, &wf, Some(1))
            .await?
            .runs,
        3,
        "v1 runs"
    );
    ensure_eq!(
        ctx.set
            .metrics
            .summary(&ctx.tenant, &wf, Some(2))
            .await?
            .runs,
        5,
        "v2 runs"
    );
    let all = ctx.set.metrics.summary(&ctx.tenant, &wf, None).await?;
    ensure_eq!(all.runs, 8, "all runs");
    ensure_eq!(
        all.duration_ms.map(|d| (d.min, d.max)),
        Some((10.0, 24.0)),
        "all-versions min/max"
    );
    ensure_eq!(
        ctx.set
            .metrics
            .summary(&ctx.tenant, &wf, Some(3))
            .await?
            .runs,
        0,
        "a version without runs"
    );
    Ok(())
}

/// M3: custom values get a summary.
pub async fn m3_custom_value_summary(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m3")?;
    for (i, tokens) in [100.0, 200.0, 600.0].into_iter().enumerate() {
        ctx.set
            .metrics
            .record(
                &ctx.tenant,
                metric(
                    &wf,
                    1,
                    RunStatus::Succeeded,
                    1.0,
                    i64::try_from(i).unwrap_or(0),
                    &[("tokens", tokens), ("cost", tokens / 100.0)],
                )?,
            )
            .await?;
    }
    let s = ctx
        .set
        .metrics
        .value_summary(&ctx.tenant, &wf, &id("tokens")?)
        .await?
        .ok_or_else(|| Failure("no tokens summary".into()))?;
    ensure_eq!(
        (s.count, s.min, s.max, s.mean),
        (3, 100.0, 600.0, 300.0),
        "tokens summary"
    );
    ensure!(close(s.p50, 200.0, 0.01), "tokens p50 {}", s.p50);
    ensure!(
        ctx.set
            .metrics
            .value_summary(&ctx.tenant, &wf, &id("absent")?)
            .await?
            .is_none(),
        "summary of an unknown value"
    );
    Ok(())
}

/// M3: a custom value as a time series in buckets.
pub async fn m3_series_in_buckets(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m3s")?;
    let minute = 60_000_000_i64;
    for (at, v) in [
        (0, 1.0),
        (10, 3.0),
        (minute + 5, 10.0),
        (3 * minute, 7.0),
        (10 * minute, 99.0),
    ] {
        ctx.set
            .metrics
            .record(
                &ctx.tenant,
                metric(
                    &wf,
                    1,
                    RunStatus::Succeeded,
                    1.0,
                    1_000 * minute + at,
                    &[("size", v)],
                )?,
            )
            .await?;
    }
    let q = SeriesQuery {
        workflow_id: wf,
        name: id("size")?,
        from: Timestamp::from_micros(1_000 * minute),
        to: Timestamp::from_micros(1_005 * minute),
        bucket: Duration::from_secs(60),
    };
    let got = ctx.set.metrics.series(&ctx.tenant, q).await?;
    let summary: Vec<(i64, u64, f64, f64, f64)> = got
        .iter()
        .map(|b| {
            (
                (b.start.as_micros() / minute) - 1_000,
                b.count,
                b.sum,
                b.min,
                b.max,
            )
        })
        .collect();
    ensure_eq!(
        summary,
        vec![
            (0, 2, 4.0, 1.0, 3.0),
            (1, 1, 10.0, 10.0, 10.0),
            (3, 1, 7.0, 7.0, 7.0)
        ],
        "buckets"
    );
    Ok(())
}

/// M3: the baseline is the median of the last N values.
pub async fn m3_baseline_is_median_of_last_n(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m3b")?;
    for (i, v) in [1000.0, 10.0, 20.0, 30.0, 40.0].into_iter().enumerate() {
        ctx.set
            .metrics
            .record(
                &ctx.tenant,
                metric(
                    &wf,
                    1,
                    RunStatus::Succeeded,
                    1.0,
                    100 + i64::try_from(i).unwrap_or(0),
                    &[("cost", v)],
                )?,
            )
            .await?;
    }
    let b = ctx
        .set
        .metrics
        .baseline(&ctx.tenant, &wf, &id("cost")?, 4)
        .await?
        .ok_or_else(|| Failure("no baseline".into()))?;
    ensure_eq!((b.samples, b.median), (4, 25.0), "baseline of the last 4");
    ensure_eq!(b.ratio(50.0), Some(2.0), "ratio");
    Ok(())
}

fn observation(wf: &WorkflowId, key: &str, confidence: f64, at: i64) -> PatternObservation {
    PatternObservation {
        workflow_id: wf.clone(),
        kind: "slow_node".into(),
        key: key.into(),
        description: format!("{key} is slow"),
        data: json!({"p95_ms": at}),
        confidence,
        seen_at: Timestamp::from_micros(at),
    }
}

/// M4: patterns upsert per (workflow, kind, key), counting occurrences.
pub async fn m4_patterns_upsert_counting_occurrences(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m4")?;
    ctx.set
        .metrics
        .upsert_pattern(&ctx.tenant, observation(&wf, "fetch", 0.5, 10))
        .await?;
    ctx.set
        .metrics
        .upsert_pattern(&ctx.tenant, observation(&wf, "fetch", 0.7, 30))
        .await?;
    let p = ctx
        .set
        .metrics
        .upsert_pattern(&ctx.tenant, observation(&wf, "fetch", 0.9, 20))
        .await?;
    ensure_eq!(
        (
            p.occurrences,
            p.first_seen.as_micros(),
            p.last_seen.as_micros(),
            p.confidence
        ),
        (3, 10, 30, 0.9),
        "pattern"
    );
    let listed = ctx.set.metrics.patterns(&ctx.tenant, Some(&wf)).await?;
    ensure_eq!(listed, vec![p], "listed");
    Ok(())
}

/// M4: patterns list by confidence, highest first.
pub async fn m4_patterns_list_by_confidence(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m4c")?;
    for (k, c) in [("a", 0.2), ("b", 0.9), ("c", 0.5)] {
        ctx.set
            .metrics
            .upsert_pattern(&ctx.tenant, observation(&wf, k, c, 1))
            .await?;
    }
    let keys: Vec<String> = ctx
        .set
        .metrics
        .patterns(&ctx.tenant, Some(&wf))
        .await?
        .into_iter()
        .map(|p| p.key)
        .collect();
    ensure_eq!(keys, vec!["b", "c", "a"], "order");
    Ok(())
}

/// M5: concurrent recorders lose no update.
pub async fn m5_concurrent_recorders_lose_no_update(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m5")?;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (set, t, wf) = (ctx.set.clone(), ctx.tenant.clone(), wf.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let m = metric(
                    &wf,
                    1,
                    RunStatus::Succeeded,
                    f64::from(w * 100 + i),
                    1,
                    &[("n", 1.0)],
                )?;
                set.metrics.record(&t, m).await?;
            }
            Ok::<(), Failure>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| Failure(format!("recorder panicked: {e}")))??;
    }
    ensure_eq!(
        ctx.set.metrics.summary(&ctx.tenant, &wf, None).await?.runs,
        200,
        "runs"
    );
    ensure_eq!(
        ctx.set
            .metrics
            .value_summary(&ctx.tenant, &wf, &id("n")?)
            .await?
            .map(|s| s.count),
        Some(200),
        "value count"
    );
    Ok(())
}

/// M6: tenants never see each other's metrics.
pub async fn m6_tenants_never_see_each_other(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("m6")?;
    ctx.set
        .metrics
        .record(
            &ctx.tenant,
            metric(&wf, 1, RunStatus::Succeeded, 5.0, 1, &[("x", 1.0)])?,
        )
        .await?;
    ctx.set
        .metrics
        .upsert_pattern(&ctx.tenant, observation(&wf, "k", 0.5, 1))
        .await?;
    ensure_eq!(
        ctx.set.metrics.summary(&ctx.other, &wf, None).await?.runs,
        0,
        "other tenant's runs"
    );
    ensure!(
        ctx.set
            .metrics
            .value_summary(&ctx.other, &wf, &id("x")?)
            .await?
            .is_none(),
        "other tenant sees values"
    );
    ensure!(
        ctx.set.metrics.patterns(&ctx.other, None).await?.is_empty(),
        "other tenant sees patterns"
    );
    Ok(())
}
