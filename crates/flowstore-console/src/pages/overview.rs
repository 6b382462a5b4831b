//! `/`: the backends' health and what the tenant holds.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;

use crate::counts::CountCache;
use crate::html::{esc, page as layout};
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Query(q): Query<TenantQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let health = console.storage().ports().operations.health().await;
    let counts = CountCache::get(&console, &t).await?;
    let stats = &counts.stats;
    let state = if health.ok {
        "<span class=\"ok\">ok</span>"
    } else {
        "<span class=\"bad\">FAILING</span>"
    };
    let rows = [
        ("workflows", stats.workflows),
        ("workflow versions", stats.workflow_versions),
        ("runs", stats.runs),
        ("run events", stats.run_events),
        ("runs with metrics", stats.metric_records),
        ("patterns", stats.patterns),
        (
            "queue depth (jobs not acknowledged, every queue)",
            stats.jobs,
        ),
        ("documents", stats.documents),
    ]
    .iter()
    .map(|(k, v)| format!("<tr><td>{k}</td><td>{v}</td></tr>"))
    .collect::<String>();
    let recent = counts
        .last_hour
        .iter()
        .map(|(status, n, more)| {
            let more = if *more { "+" } else { "" };
            format!("<tr><td>{}</td><td>{n}{more}</td></tr>", status.as_str())
        })
        .collect::<String>();
    let tu = crate::html::url(t.as_str());
    let body = format!(
        "<h2>Backends</h2><p>{} {state} <span class=\"muted\">{}</span></p>\
         <h2>What {} holds</h2><p class=\"muted\">counted at {taken} (at most {fresh} s before)</p><table>{rows}</table>\
         <h2>Runs started in the last hour</h2><table id=\"last-hour\">{recent}</table>\
         <h2>A queue</h2><form method=\"get\" action=\"/queues\"><input type=\"hidden\" name=\"tenant\" value=\"{te}\">\
         <a href=\"/queues/runs?tenant={tu}\">runs</a> or another: <input name=\"queue\"> <button>Show</button></form>",
        esc(&health.backend),
        esc(&health.detail),
        esc(t.as_str()),
        te = esc(t.as_str()),
        taken = counts.taken_at,
        fresh = crate::counts::FRESH.as_secs(),
    );
    Ok(Html(layout("Overview", t.as_str(), &body)))
}
