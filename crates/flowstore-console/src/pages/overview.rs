//! `/`: the backends' health and what the tenant holds.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;

use storage_ports::{RunQuery, RunStatus, Timestamp};

use crate::html::{esc, page as layout};
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Query(q): Query<TenantQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let ports = console.storage().ports();
    let health = ports.operations.health().await;
    let stats = ports.operations.stats(&t).await?;
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
    let recent = last_hour(&console, &t).await?;
    let tu = crate::html::url(t.as_str());
    let body = format!(
        "<h2>Backends</h2><p>{} {state} <span class=\"muted\">{}</span></p>\
         <h2>What {} holds</h2><table>{rows}</table>\
         <h2>Runs started in the last hour</h2><table id=\"last-hour\">{recent}</table>\
         <h2>A queue</h2><form method=\"get\" action=\"/queues\"><input type=\"hidden\" name=\"tenant\" value=\"{te}\">\
         <a href=\"/queues/runs?tenant={tu}\">runs</a> or another: <input name=\"queue\"> <button>Show</button></form>",
        esc(&health.backend),
        esc(&health.detail),
        esc(t.as_str()),
        te = esc(t.as_str()),
    );
    Ok(Html(layout("Overview", t.as_str(), &body)))
}

/// At most this many runs are counted per status; beyond, the page says "1000+".
const COUNTED: usize = storage_ports::PageRequest::MAX_LIMIT;

/// Rows of runs started in the last hour by status: one bounded query per status.
async fn last_hour(console: &Console, t: &storage_ports::TenantId) -> Result<String, PageError> {
    let since = Timestamp::from_micros(Timestamp::now().as_micros() - 3_600_000_000);
    let mut rows = String::new();
    for status in [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ] {
        let query = RunQuery {
            statuses: vec![status],
            started_from: Some(since),
            limit: COUNTED,
            ..RunQuery::default()
        };
        let page = console.storage().ports().runs.query(t, query).await?;
        let more = if page.next.is_some() { "+" } else { "" };
        rows.push_str(&format!(
            "<tr><td>{s}</td><td>{n}{more}</td></tr>",
            s = status.as_str(),
            n = page.items.len(),
        ));
    }
    Ok(rows)
}
