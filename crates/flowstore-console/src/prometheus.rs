//! `/metrics`: the metrics layer's figures in Prometheus text format.
//!
//! The console does not own a metrics recorder: the process that starts it does
//! (the CLI's `--metrics`), and hands over how to render what it has counted.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::Console;

/// Renders the current figures as Prometheus text.
#[derive(Clone)]
pub struct Figures(Arc<dyn Fn() -> String + Send + Sync>);

impl Figures {
    /// Figures from `render`, called at each scrape.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Figures(..)")
    }
}

pub(crate) async fn figures(State(console): State<Arc<Console>>) -> Response {
    match &console.figures {
        Some(Figures(render)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "the metrics layer is off: start the console with `flowstore --metrics ui`",
        )
            .into_response(),
    }
}
