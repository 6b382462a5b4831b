//! `/queues/{queue}`: counts, scheduled jobs with their due time, running jobs with
//! their lease expiry, dead jobs with their errors; with `--allow-actions`, buttons
//! to pause or resume the queue, cancel a job and requeue a dead one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use storage_ports::{JobInfo, JobStatus, QueueName, Timestamp};

use crate::actions::button;
use crate::html::{esc, page as layout, url};
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

const SHOWN: usize = 100;

/// What the queue page and `/api/queues/{queue}` show.
pub(crate) struct QueueView {
    pub stats: storage_ports::QueueStats,
    pub scheduled: Vec<JobInfo>,
    pub running: Vec<JobInfo>,
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
        scheduled: jobs.jobs(t, name, JobStatus::Scheduled, SHOWN).await?,
        running: jobs.jobs(t, name, JobStatus::Running, SHOWN).await?,
        dead: jobs.dead(t, name, SHOWN).await?,
    })
}

/// The overview's queue form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PickQuery {
    tenant: Option<String>,
    #[serde(default)]
    queue: String,
}

/// `/queues?queue=`: the queue's page.
pub(crate) async fn pick(Query(q): Query<PickQuery>) -> Result<Redirect, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let name = QueueName::new(q.queue)?;
    Ok(Redirect::to(&format!(
        "/queues/{}?tenant={}",
        url(name.as_str()),
        url(t.as_str())
    )))
}

fn at(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
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
        scheduled,
        running,
        dead,
    } = load(&console, &t, &name).await?;
    let qp = format!("/queues/{}", url(name.as_str()));
    let job_path =
        |job: &JobInfo, what: &str| format!("{qp}/jobs/{}/{what}", url(job.job_id.as_str()));
    let mut body = format!(
        "<table><tr><th>pending</th><th>scheduled</th><th>running</th><th>dead</th><th>completed (kept)</th><th>paused</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td id=\"paused\">{}</td></tr></table>",
        s.pending, s.scheduled, s.running, s.dead, s.completed, if s.paused { "yes" } else { "no" }
    );
    let (verb, label) = if s.paused {
        ("resume", "Resume the queue")
    } else {
        ("pause", "Pause the queue")
    };
    body.push_str(&button(
        &console,
        &format!("{qp}/{verb}"),
        t.as_str(),
        label,
    ));
    body.push_str("<h2>Scheduled</h2><table id=\"scheduled\"><tr><th>job</th><th>due</th><th>priority</th><th>enqueued</th><th></th></tr>");
    for j in &scheduled {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(j.job_id.as_str()),
            at(j.scheduled_for),
            j.priority,
            j.enqueued_at,
            button(&console, &job_path(j, "cancel"), t.as_str(), "Cancel"),
        ));
    }
    body.push_str("</table><h2>Running</h2><table id=\"running\"><tr><th>job</th><th>attempt</th><th>lease expires</th><th>enqueued</th><th>progress</th><th></th></tr>");
    for j in &running {
        let cancel = if j.cancel_requested {
            "cancel requested".to_owned()
        } else {
            button(&console, &job_path(j, "cancel"), t.as_str(), "Cancel")
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td><td>{}</td><td>{cancel}</td></tr>",
            esc(j.job_id.as_str()),
            j.attempts,
            j.max_attempts,
            at(j.lease_expires_at),
            j.enqueued_at,
            esc(&j
                .progress
                .as_ref()
                .map_or_else(String::new, ToString::to_string)),
        ));
    }
    body.push_str("</table><h2>Dead</h2><table id=\"dead\"><tr><th>job</th><th>attempts</th><th>died</th><th>last error</th><th></th></tr>");
    for d in &dead {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
            esc(d.job_id.as_str()),
            d.attempts,
            d.died_at,
            esc(&d.last_error),
            button(
                &console,
                &format!("{qp}/jobs/{}/requeue", url(d.job_id.as_str())),
                t.as_str(),
                "Requeue"
            ),
        ));
    }
    body.push_str("</table>");
    Ok(Html(layout(
        &format!("Queue {}", name.as_str()),
        t.as_str(),
        &body,
    )))
}
