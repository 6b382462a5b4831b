//! `/queues/{queue}`: counts, running jobs and dead jobs with their errors.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use storage_ports::{JobStatus, QueueName};

use crate::html::{esc, page as layout};
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

const SHOWN: usize = 100;

/// What the queue page and `/api/queues/{queue}` show.
pub(crate) struct QueueView {
    pub stats: storage_ports::QueueStats,
    pub running: Vec<storage_ports::JobInfo>,
    pub dead: Vec<storage_ports::DeadJob>,
}

pub(crate) async fn load(
    console: &Console,
    t: &storage_ports::TenantId,
    name: &QueueName,
) -> Result<QueueView, PageError> {
    let jobs = &console.storage().ports().queue;
    Ok(QueueView {
        stats: jobs.stats(t, name).await?,
        running: jobs.jobs(t, name, JobStatus::Running, SHOWN).await?,
        dead: jobs.dead(t, name, SHOWN).await?,
    })
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Path(queue): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let name = QueueName::new(queue)?;
    let QueueView {
        stats: s,
        running,
        dead,
    } = load(&console, &t, &name).await?;
    let mut body = format!(
        "<table><tr><th>pending</th><th>scheduled</th><th>running</th><th>dead</th><th>completed (kept)</th><th>paused</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.pending, s.scheduled, s.running, s.dead, s.completed, if s.paused { "yes" } else { "no" }
    );
    body.push_str("<h2>Running</h2><table><tr><th>job</th><th>attempt</th><th>enqueued</th><th>progress</th></tr>");
    for j in &running {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
            esc(j.job_id.as_str()),
            j.attempts,
            j.max_attempts,
            j.enqueued_at,
            esc(&j
                .progress
                .as_ref()
                .map_or_else(String::new, ToString::to_string)),
        ));
    }
    body.push_str("</table><h2>Dead</h2><table><tr><th>job</th><th>attempts</th><th>died</th><th>last error</th></tr>");
    for d in &dead {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
            esc(d.job_id.as_str()),
            d.attempts,
            d.died_at,
            esc(&d.last_error),
        ));
    }
    body.push_str("</table>");
    Ok(Html(layout(
        &format!("Queue {}", name.as_str()),
        t.as_str(),
        &body,
    )))
}
