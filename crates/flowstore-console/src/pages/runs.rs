//! `/runs`: runs by workflow and status, newest first, with cursor paging; and
//! `/runs/{run}`: one run with its timeline, snapshots, events and error.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use storage_ports::{RunId, RunQuery, RunStatus, RunStep, WorkflowId};

use crate::html::{esc, page as layout, url};
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

const PAGE: usize = 50;

/// The filters of `/runs`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RunsQuery {
    pub(crate) tenant: Option<String>,
    workflow: Option<String>,
    version: Option<String>,
    status: Option<String>,
    /// Only runs started in the last this many hours.
    hours: Option<String>,
    cursor: Option<String>,
}

/// A filter's number, absent when the field was left empty.
fn number<T: std::str::FromStr>(field: &str, v: Option<&str>) -> Result<Option<T>, PageError> {
    v.filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim().parse().map_err(|_| {
                PageError::from(storage_ports::Error::invalid_input(format!(
                    "{field} must be a whole number, not {v:?}"
                )))
            })
        })
        .transpose()
}

/// The storage query of `/runs` and `/api/runs`.
pub(crate) fn run_query(q: &RunsQuery) -> Result<RunQuery, PageError> {
    let workflow = q.workflow.as_deref().filter(|w| !w.is_empty());
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let hours: Option<u32> = number("hours", q.hours.as_deref())?;
    Ok(RunQuery {
        workflow_id: workflow.map(WorkflowId::new).transpose()?,
        version: number("version", q.version.as_deref())?,
        started_from: hours.map(|h| {
            storage_ports::Timestamp::from_micros(
                storage_ports::Timestamp::now().as_micros() - i64::from(h) * 3_600_000_000,
            )
        }),
        statuses: status
            .map(RunStatus::parse)
            .transpose()?
            .into_iter()
            .collect(),
        limit: PAGE,
        cursor: crate::pages::cursor_of(q.cursor.clone())?,
        ..RunQuery::default()
    })
}

pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Query(q): Query<RunsQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let workflow = q.workflow.as_deref().filter(|w| !w.is_empty());
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let query = run_query(&q)?;
    let page = console.storage().ports().runs.query(&t, query).await?;
    let tu = url(t.as_str());
    let mut body = format!(
        "<form method=\"get\"><input type=\"hidden\" name=\"tenant\" value=\"{}\">\
         workflow <input name=\"workflow\" value=\"{}\"> version <input name=\"version\" size=\"4\" value=\"{}\"> \
         started in the last <input name=\"hours\" size=\"4\" value=\"{}\"> hours status <select name=\"status\">",
        esc(t.as_str()),
        esc(workflow.unwrap_or("")),
        esc(q.version.as_deref().unwrap_or("")),
        esc(q.hours.as_deref().unwrap_or("")),
    );
    for s in ["", "running", "succeeded", "failed", "cancelled"] {
        let sel = if Some(s) == status { " selected" } else { "" };
        body.push_str(&format!("<option{sel}>{s}</option>"));
    }
    body.push_str("</select> <button>Filter</button></form><table><tr><th>run</th><th>workflow</th><th>version</th><th>status</th><th>started</th><th>ended</th></tr>");
    for r in &page.items {
        let class = match r.status {
            RunStatus::Failed => " class=\"bad\"",
            RunStatus::Succeeded => " class=\"ok\"",
            _ => "",
        };
        body.push_str(&format!(
            "<tr><td><a href=\"/runs/{id_url}?tenant={tu}\">{id}</a></td><td>{wf}</td><td>{v}</td><td{class}>{st}</td><td>{start}</td><td>{end}</td></tr>",
            id_url = url(r.run_id.as_str()),
            id = esc(r.run_id.as_str()),
            wf = esc(r.workflow_id.as_str()),
            v = r.version,
            st = r.status.as_str(),
            start = r.started_at,
            end = r.ended_at.map(|e| e.to_string()).unwrap_or_default(),
        ));
    }
    body.push_str("</table>");
    if let Some(next) = &page.next {
        body.push_str(&format!(
            "<p><a href=\"/runs?tenant={tu}&workflow={}&version={}&hours={}&status={}&cursor={}\">next page</a></p>",
            url(workflow.unwrap_or("")),
            url(q.version.as_deref().unwrap_or("")),
            url(q.hours.as_deref().unwrap_or("")),
            url(status.unwrap_or("")),
            url(next.as_str())
        ));
    }
    Ok(Html(layout("Runs", t.as_str(), &body)))
}

pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Path(run): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let id = RunId::new(run)?;
    let runs = &console.storage().ports().runs;
    let complete = runs.get_complete(&t, &id).await?;
    let events = runs.events(&t, &id, 1).await?;
    let r = &complete.run;
    let end = r.ended_at.unwrap_or_else(storage_ports::Timestamp::now);
    let nodes: Vec<_> = complete
        .steps
        .iter()
        .filter_map(|s| match s {
            RunStep::Node(n) => Some(n),
            RunStep::Snapshot(_) => None,
        })
        .collect();
    let mut body = format!(
        "<p>workflow <a href=\"/runs?tenant={tu}&workflow={wfu}\">{wf}</a> v{v}, <b>{st}</b>, started {start}{ended}</p>",
        tu = url(t.as_str()),
        wfu = url(r.workflow_id.as_str()),
        wf = esc(r.workflow_id.as_str()),
        v = r.version,
        st = r.status.as_str(),
        start = r.started_at,
        ended = r.ended_at.map(|e| format!(", ended {e}")).unwrap_or_default(),
    );
    if let Some(e) = &r.error {
        body.push_str(&format!(
            "<h2>Error</h2><p class=\"bad\">{}: {}</p>",
            esc(&e.kind),
            esc(&e.message)
        ));
    }
    body.push_str("<h2>Timeline</h2>");
    body.push_str(&crate::timeline::svg(&nodes, r.started_at, end));
    body.push_str(
        "<h2>Snapshots</h2><table><tr><th>at</th><th>variable</th><th>old</th><th>new</th></tr>",
    );
    for s in &complete.steps {
        if let RunStep::Snapshot(v) = s {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                v.at,
                esc(&v.name),
                esc(&v.old_value.to_string()),
                esc(&v.new_value.to_string())
            ));
        }
    }
    let live = r.ended_at.is_none() && r.status == RunStatus::Running;
    let next = events.last().map_or(1, |e| e.seq + 1);
    body.push_str(&format!(
        "</table><h2>Events</h2><p id=\"live\" class=\"muted\"></p><table id=\"events\" data-live=\"{live}\" data-next=\"{next}\" \
         data-stream=\"/api/runs/{idu}/events?tenant={tu}\"><tr><th>seq</th><th>at</th><th>what</th></tr>",
        idu = url(id.as_str()),
        tu = url(t.as_str()),
    ));
    for e in &events {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.seq,
            e.at,
            esc(&crate::live::describe(&e.kind))
        ));
    }
    body.push_str(&format!(
        "</table><h2>Inputs</h2><pre>{}</pre>",
        esc(&serde_json::to_string_pretty(&r.inputs).unwrap_or_default())
    ));
    body.push_str(&crate::actions::button(
        &console,
        &format!("/runs/{}/delete", url(id.as_str())),
        t.as_str(),
        "Delete this run",
    ));
    if live {
        body.push_str("<script src=\"/assets/live.js\"></script>");
    }
    Ok(Html(layout(
        &format!("Run {}", id.as_str()),
        t.as_str(),
        &body,
    )))
}
