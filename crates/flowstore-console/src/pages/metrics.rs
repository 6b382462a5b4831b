//! `/metrics/{workflow}`: summary cards (runs, success rate, duration percentiles),
//! the durations over time and a custom value's time series, each with its baseline
//! drawn in, and the patterns.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use storage_ports::{
    MetricName, PageRequest, RunQuery, SeriesBucket, SeriesQuery, Timestamp, WorkflowId,
};

use crate::html::{esc, page as layout, url};
use crate::{tenant_of, Console, PageError};

/// `?tenant=&name=&hours=`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct MetricsQuery {
    tenant: Option<String>,
    name: Option<String>,
    hours: Option<u32>,
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Path(workflow): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let wf = WorkflowId::new(workflow)?;
    let metrics = &console.storage().ports().metrics;
    let s = metrics.summary(&t, &wf, None).await?;
    let mut body = String::from("<table><tr><th>runs</th><th>success rate</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>mean ms</th></tr><tr>");
    let d = s.duration_ms.as_ref();
    let _ = write!(
        body,
        "<td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.runs,
        s.success_rate * 100.0,
        d.map_or(String::new(), |d| format!("{:.1}", d.p50)),
        d.map_or(String::new(), |d| format!("{:.1}", d.p95)),
        d.map_or(String::new(), |d| format!("{:.1}", d.p99)),
        d.map_or(String::new(), |d| format!("{:.1}", d.mean)),
    );
    let _ = write!(
        body,
        "<form><input type=\"hidden\" name=\"tenant\" value=\"{}\">value <input name=\"name\" value=\"{}\"> over <input name=\"hours\" size=\"4\" value=\"{}\"> hours <button>Chart</button></form>",
        esc(t.as_str()),
        esc(q.name.as_deref().unwrap_or("")),
        q.hours.unwrap_or(24)
    );
    let hours = q.hours.unwrap_or(24).clamp(1, 8_784);
    let to = Timestamp::now();
    let from = Timestamp::from_micros(to.as_micros() - i64::from(hours) * 3_600_000_000);
    let bucket = Duration::from_secs((u64::from(hours) * 3600 / 48).max(60));
    let window = |name: MetricName| SeriesQuery {
        workflow_id: wf.clone(),
        name,
        from,
        to,
        bucket,
    };
    // Durations from the runs themselves: the newest finished runs started in the
    // window, at most one listing page (1,000), bucketed as a value's series is.
    let runs = console
        .storage()
        .ports()
        .runs
        .query(
            &t,
            RunQuery {
                workflow_id: Some(wf.clone()),
                started_from: Some(from),
                limit: PageRequest::MAX_LIMIT,
                ..RunQuery::default()
            },
        )
        .await?;
    #[allow(clippy::cast_precision_loss)]
    let durations = runs.items.iter().filter_map(|r| {
        r.ended_at.map(|e| {
            (
                r.started_at,
                (e.as_micros() - r.started_at.as_micros()) as f64 / 1_000.0,
            )
        })
    });
    let shown = window(MetricName::new("duration_ms")?).bucketize(durations);
    let _ = write!(
        body,
        "<h2>Durations (ms)</h2>{}<p>{} runs{}; the dashed line is the p50 of every recorded run</p>",
        chart(&shown, d.map(|d| d.p50), from, to),
        runs.items.len(),
        if runs.next.is_some() { ", the newest 1,000" } else { "" },
    );
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        let name = MetricName::new(name)?;
        let series = metrics.series(&t, window(name.clone())).await?;
        let baseline = metrics.baseline(&t, &wf, &name, 10).await?;
        let _ = write!(body, "<h2>{}</h2>", esc(name.as_str()));
        body.push_str(&chart(&series, baseline.map(|b| b.median), from, to));
        if let Some(b) = baseline {
            let _ = write!(
                body,
                "<p>baseline: median {} of the last {} values (dashed line)</p>",
                b.median, b.samples
            );
        }
    }
    body.push_str("<h2>Patterns</h2><table><tr><th>kind</th><th>key</th><th>description</th><th>seen</th><th>confidence</th></tr>");
    for p in metrics.patterns(&t, Some(&wf)).await? {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            esc(&p.kind),
            esc(&p.key),
            esc(&p.description),
            p.occurrences,
            p.confidence
        );
    }
    let _ = write!(
        body,
        "</table><p><a href=\"/workflows/{}?tenant={}\">the workflow</a></p>",
        url(wf.as_str()),
        url(t.as_str())
    );
    Ok(Html(layout(
        &format!("Metrics of {}", wf.as_str()),
        t.as_str(),
        &body,
    )))
}

/// The bucket means as a line on a time axis, the baseline dashed across.
fn chart(series: &[SeriesBucket], baseline: Option<f64>, from: Timestamp, to: Timestamp) -> String {
    const W: f64 = 800.0;
    const H: f64 = 200.0;
    if series.is_empty() {
        return "<p class=\"muted\">no values in this period</p>".into();
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = |b: &SeriesBucket| b.sum / (b.count.max(1) as f64);
    let values: Vec<f64> = series.iter().map(mean).chain(baseline).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = (hi - lo).max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let span = (to.as_micros() - from.as_micros()).max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    let x = |t: Timestamp| (t.as_micros() - from.as_micros()) as f64 / span * W;
    let y = |v: f64| H - 10.0 - (v - lo) / range * (H - 20.0);
    let points: Vec<String> = series
        .iter()
        .map(|b| format!("{:.1},{:.1}", x(b.start), y(mean(b))))
        .collect();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"series\">\
         <polyline fill=\"none\" stroke=\"#246\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    // A dot per bucket, so that a single bucket shows too.
    for b in series {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#246\"/>",
            x(b.start),
            y(mean(b))
        );
    }
    if let Some(b) = baseline {
        let _ = write!(out, "<line x1=\"0\" x2=\"{W}\" y1=\"{yb:.1}\" y2=\"{yb:.1}\" stroke=\"#c60\" stroke-dasharray=\"6 4\"/>", yb = y(b));
    }
    let _ = write!(
        out,
        "<text x=\"2\" y=\"12\" font-size=\"11\">{}</text><text x=\"2\" y=\"{}\" font-size=\"11\">{}</text></svg>",
        label(hi),
        H - 2.0,
        label(lo)
    );
    out
}

/// An axis label: whole numbers as they are, others to one decimal.
fn label(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}
