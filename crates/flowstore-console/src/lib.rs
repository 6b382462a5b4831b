//! `flowstore ui`: a web console over the configured [`Storage`] (issue 17).
//!
//! A crate of its own, beside the CLI rather than in it: it is not a backend, it
//! reads the storage only through `storage-wiring`'s `Storage` and the ports, and it
//! brings the HTTP server (axum) that the rest of the build does not need. The CLI
//! starts it; a host can mount [`Console::router`] in its own server.
//!
//! Pages are rendered on the server (no JavaScript build), every page takes
//! `?tenant=`, and every value from storage is escaped ([`html::esc`]).

mod actions;
mod counts;
pub mod html;
mod live;
mod pages;
mod prometheus;
mod timeline;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use storage_ports::{ErrorKind, Secret, TenantId};
use storage_wiring::Storage;

pub use prometheus::Figures;

/// How the console is reached and what it may do.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// A bearer token every request must carry (`Authorization: Bearer ...`); required
    /// when the console listens beyond loopback.
    pub token: Option<Secret>,
    /// Whether operator actions (requeue, cancel, pause, resume, delete a run) are
    /// on. Off, the console only reads.
    pub allow_actions: bool,
    /// The metrics layer's figures for `/metrics`, when the layer is on.
    pub figures: Option<Figures>,
}

/// The console over one storage.
#[derive(Debug)]
pub struct Console {
    storage: Storage,
    token: Option<Secret>,
    csrf: Option<actions::CsrfToken>,
    figures: Option<Figures>,
    counts: counts::CountCache,
}

/// Refuses a non-loopback address without a token: the console shows what the
/// storage holds, so only the machine itself may see it unasked.
///
/// # Errors
/// What to do instead, in words.
pub fn check_binding(addr: &SocketAddr, token: Option<&Secret>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "{addr} is not a loopback address: set FLOWSTORE_UI_TOKEN to a secret that every request must send as `Authorization: Bearer <token>`, or listen on 127.0.0.1"
        ))
    }
}

impl Console {
    /// The console over `storage`.
    #[must_use]
    pub fn new(storage: Storage, options: ConsoleOptions) -> Self {
        Self {
            storage,
            token: options.token,
            csrf: options.allow_actions.then(actions::CsrfToken::generate),
            figures: options.figures,
            counts: counts::CountCache::default(),
        }
    }

    /// The console's routes, to serve or to mount in a host's server.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(pages::overview::page))
            .route("/runs", get(pages::runs::list))
            .route("/runs/{run}", get(pages::runs::show))
            .route("/queues", get(pages::queue::pick))
            .route("/queues/{queue}", get(pages::queue::page))
            .route("/api/overview", get(pages::api::overview))
            .route("/api/runs", get(pages::api::runs))
            .route("/api/runs/{run}", get(pages::api::run))
            .route("/api/queues/{queue}", get(pages::api::queue))
            .route("/api/workflows", get(pages::api::workflows))
            .route("/metrics/{workflow}", get(pages::metrics::page))
            .route("/credentials", get(pages::credentials::page))
            .route("/workflows", get(pages::workflows::list))
            .route("/workflows/{workflow}", get(pages::workflows::show))
            .route("/workflows/{workflow}/diff", get(pages::workflows::diff))
            .route("/api/runs/{run}/events", get(live::events))
            .route("/assets/live.js", get(live::script))
            .route("/metrics", get(prometheus::figures))
            .route("/queues/{queue}/{action}", post(actions::queue_action))
            .route(
                "/queues/{queue}/jobs/{job}/{action}",
                post(actions::job_action),
            )
            .route("/runs/{run}/delete", post(actions::delete_run))
            .layer(axum::middleware::map_response(secure_headers))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                authorize,
            ))
            .with_state(self)
    }

    /// Serves on `listener` until the task is dropped or the listener fails.
    ///
    /// # Errors
    /// The listener's I/O error.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, Arc::new(self).router()).await
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The CSRF token action forms carry, when actions are on.
    pub(crate) fn csrf(&self) -> Option<&str> {
        self.csrf.as_ref().map(actions::CsrfToken::expose)
    }
}

/// Every answer says what it may load and that it is not to be framed.
async fn secure_headers(mut response: Response) -> Response {
    let (name, value) = actions::CONTENT_SECURITY_POLICY;
    let headers = response.headers_mut();
    headers.insert(name, header::HeaderValue::from_static(value));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// With a token configured, a request without it gets 401 and nothing else.
async fn authorize(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    if let Some(token) = &console.token {
        let sent = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(sent.as_bytes(), token.expose().as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "this console needs its token: send Authorization: Bearer <FLOWSTORE_UI_TOKEN>",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares in time that does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a page answers when the storage fails: a status that says why, the message
/// escaped.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) StatusCode, pub(crate) String);

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl std::error::Error for PageError {}

impl From<storage_ports::Error> for PageError {
    fn from(e: storage_ports::Error) -> Self {
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            // An action on something that moved on meanwhile: a finished job
            // cancelled, a live job requeued.
            ErrorKind::PreconditionFailed | ErrorKind::AlreadyExists | ErrorKind::Immutable => {
                StatusCode::CONFLICT
            }
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = html::page(
            "Error",
            "-",
            &format!("<p class=\"bad\">{}</p>", html::esc(&self.1)),
        );
        (self.0, Html(body)).into_response()
    }
}

/// The tenant a page shows: `?tenant=`, `default` when absent.
pub(crate) fn tenant_of(q: Option<&str>) -> Result<TenantId, PageError> {
    Ok(TenantId::new(q.unwrap_or("default"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_goes_without_a_token() {
        let lo: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let any: SocketAddr = ([0, 0, 0, 0], 8080).into();
        assert!(check_binding(&lo, None).is_ok());
        assert!(check_binding(&any, None).is_err());
        assert!(check_binding(&any, Some(&Secret::new(String::new()))).is_err());
        assert!(check_binding(&any, Some(&Secret::new("t0ken".into()))).is_ok());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
