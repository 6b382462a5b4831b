//! `/`: the backends' health and what the tenant holds.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;

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
        ("jobs (not acknowledged)", stats.jobs),
        ("documents", stats.documents),
    ]
    .iter()
    .map(|(k, v)| format!("<tr><td>{k}</td><td>{v}</td></tr>"))
    .collect::<String>();
    let body = format!(
        "<h2>Backends</h2><p>{} {state} <span class=\"muted\">{}</span></p>\
         <h2>What {} holds</h2><table>{rows}</table>",
        esc(&health.backend),
        esc(&health.detail),
        esc(t.as_str()),
    );
    Ok(Html(layout("Overview", t.as_str(), &body)))
}
