//! Live run events: `GET /api/runs/{run}/events?from=N` streams a run's events as
//! server-sent events from [`RunStore::watch`](storage_ports::RunStore::watch), and
//! the run page's one script (`/assets/live.js`, embedded) adds each to the events
//! table as text. The stream ends after the run's `Finished` event.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::{Stream, StreamExt};
use storage_ports::{RunEvent, RunEventKind, RunId, RunStep};

use crate::{tenant_of, Console, PageError};

/// The run page's script: opens the event stream of a live run and appends rows.
const LIVE_JS: &str = include_str!("../assets/live.js");

/// `/assets/live.js`.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        LIVE_JS,
    )
}

/// The query of the event stream.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct EventsQuery {
    tenant: Option<String>,
    from: Option<u64>,
}

/// What one event says, in a line: the events table's "what" column.
pub(crate) fn describe(kind: &RunEventKind) -> String {
    match kind {
        RunEventKind::Started => "started".to_owned(),
        RunEventKind::Step(RunStep::Node(n)) => {
            format!("node {} {:?}", n.node_id.as_str(), n.status)
        }
        RunEventKind::Step(RunStep::Snapshot(v)) => format!("snapshot {}", v.name),
        RunEventKind::Finished { status } => format!("finished {}", status.as_str()),
    }
}

/// One event as the stream sends it.
fn event_of(e: &RunEvent) -> Event {
    let data = serde_json::json!({
        "seq": e.seq,
        "at": e.at.to_string(),
        "what": describe(&e.kind),
        "finished": matches!(e.kind, RunEventKind::Finished { .. }),
    });
    Event::default()
        .id(e.seq.to_string())
        .event("run-event")
        .data(data.to_string())
}

pub(crate) async fn events(
    State(console): State<Arc<Console>>,
    Path(run): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let id = RunId::new(run)?;
    // A browser that reconnects says the last event it has; go on after it.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|seq| seq.saturating_add(1));
    let from = resumed.or(q.from).unwrap_or(1).max(1);
    let stream = console.storage().ports().runs.watch(&t, &id, from).await?;
    // A failure mid-stream is sent as a `stream-failed` event and ends the stream; the
    // page shows it instead of the browser reconnecting forever.
    let events = stream.scan(false, |failed, item| {
        if *failed {
            return std::future::ready(None);
        }
        let event = match item {
            Ok(e) => event_of(&e),
            Err(e) => {
                *failed = true;
                Event::default().event("stream-failed").data(e.to_string())
            }
        };
        std::future::ready(Some(Ok(event)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
