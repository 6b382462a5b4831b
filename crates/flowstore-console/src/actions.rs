//! Operator actions (`flowstore ui --allow-actions`): requeue a dead job, cancel a
//! job, pause or resume a queue, delete a run.
//!
//! Each is a `POST` of an HTML form that carries the console's CSRF token, a secret
//! made when the console starts and written only into its own pages. Another site
//! can make a browser send a form here, but it cannot read a page to learn the token
//! (the same-origin policy), so its form is refused. A request that the browser marks
//! as cross-site (`Sec-Fetch-Site: cross-site`) is refused even with a token.
//! Without `--allow-actions` every action answers 403 and no page shows a button.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use storage_ports::{JobId, QueueName, RunId, Secret};

use crate::html::{esc, url};
use crate::{same, tenant_of, Console, PageError};

/// The console's CSRF token: 244 random bits, made at start, never stored.
#[derive(Debug)]
pub(crate) struct CsrfToken(Secret);

impl CsrfToken {
    pub(crate) fn generate() -> Self {
        Self(Secret::new(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// What every action form sends.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    tenant: Option<String>,
}

/// A refused action: 403 with the reason.
fn refused(why: &str) -> Response {
    (StatusCode::FORBIDDEN, why.to_owned()).into_response()
}

/// Whether `console` takes this action request; why not otherwise.
fn check(console: &Console, headers: &HeaderMap, form: &ActionForm) -> Result<(), &'static str> {
    let Some(token) = console.csrf() else {
        return Err("actions are off: start the console with `flowstore ui --allow-actions`");
    };
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err("a cross-site request cannot act on this console");
    }
    if !same(form.csrf.as_bytes(), token.as_bytes()) {
        return Err("the form's CSRF token is missing or wrong: reload the page and try again");
    }
    Ok(())
}

/// Runs `act` when the request is allowed, persists a remote database, and sends
/// the browser back to the page at `back` (for the form's tenant).
async fn act<F, Fut>(
    console: &Console,
    headers: &HeaderMap,
    form: &ActionForm,
    back: String,
    act: F,
) -> Response
where
    F: FnOnce(storage_ports::TenantId) -> Fut,
    Fut: std::future::Future<Output = storage_ports::Result<()>>,
{
    if let Err(why) = check(console, headers, form) {
        return refused(why);
    }
    let t = match tenant_of(form.tenant.as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let tu = url(t.as_str());
    if let Err(e) = act(t).await {
        return PageError::from(e).into_response();
    }
    if let Err(e) = console.storage().persist().await {
        return PageError::from(e).into_response();
    }
    Redirect::to(&format!("{back}?tenant={tu}")).into_response()
}

fn queue_page(queue: &QueueName) -> String {
    format!("/queues/{}", url(queue.as_str()))
}

/// `POST /queues/{queue}/pause` and `.../resume`.
pub(crate) async fn queue_action(
    State(console): State<Arc<Console>>,
    Path((queue, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let q = QueueName::new(queue)?;
    let pause = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(unknown(&action)),
    };
    let jobs = &console.storage().ports().queue;
    Ok(
        act(&console, &headers, &form, queue_page(&q), |t| async move {
            if pause {
                jobs.pause(&t, &q).await
            } else {
                jobs.resume(&t, &q).await
            }
        })
        .await,
    )
}

/// `POST /queues/{queue}/jobs/{job}/requeue` and `.../cancel`.
pub(crate) async fn job_action(
    State(console): State<Arc<Console>>,
    Path((queue, job, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let q = QueueName::new(queue)?;
    let job = JobId::new(job)?;
    let requeue = match action.as_str() {
        "requeue" => true,
        "cancel" => false,
        _ => return Err(unknown(&action)),
    };
    let jobs = &console.storage().ports().queue;
    Ok(
        act(&console, &headers, &form, queue_page(&q), |t| async move {
            if requeue {
                jobs.requeue(&t, &q, &job).await
            } else {
                jobs.cancel(&t, &q, &job).await.map(|_| ())
            }
        })
        .await,
    )
}

fn unknown(action: &str) -> PageError {
    PageError(StatusCode::NOT_FOUND, format!("no action {action:?} here"))
}

pub(crate) async fn delete_run(
    State(console): State<Arc<Console>>,
    Path(run): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let id = RunId::new(run)?;
    let runs = &console.storage().ports().runs;
    Ok(act(
        &console,
        &headers,
        &form,
        "/runs".to_owned(),
        |t| async move { runs.delete(&t, &id).await },
    )
    .await)
}

/// A button that posts to `path` with the token, or nothing when actions are off.
pub(crate) fn button(console: &Console, path: &str, tenant: &str, label: &str) -> String {
    console.csrf().map_or_else(String::new, |token| {
        format!(
            "<form class=\"act\" method=\"post\" action=\"{path}\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\"><button>{label}</button></form>",
            path = esc(path),
            token = esc(token),
            tenant = esc(tenant),
            label = esc(label),
        )
    })
}

/// The header that keeps the console out of other sites' frames and stops any
/// script but its own: a second fence behind the escaping.
pub(crate) const CONTENT_SECURITY_POLICY: (header::HeaderName, &str) = (
    header::CONTENT_SECURITY_POLICY,
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
);
