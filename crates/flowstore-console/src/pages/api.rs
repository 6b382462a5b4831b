//! `/api/...`: what the pages show, as JSON (documented in docs/console.md). Errors
//! are `{"error": message, "kind": kind}` with the status the pages use.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{json, Value};
use storage_ports::{PageRequest, QueueName, RunId};

use crate::pages::runs::RunsQuery;
use crate::pages::workflows::ListQuery;
use crate::pages::TenantQuery;
use crate::{tenant_of, Console, PageError};

/// A JSON answer, or a JSON error.
pub(crate) struct Api(Result<Value, PageError>);

impl IntoResponse for Api {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(v) => Json(v).into_response(),
            Err(PageError(status, message)) => {
                let kind = status.canonical_reason().unwrap_or("error");
                (status, Json(json!({"error": message, "kind": kind}))).into_response()
            }
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, PageError> {
    serde_json::to_value(v).map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

pub(crate) async fn overview(State(c): State<Arc<Console>>, Query(q): Query<TenantQuery>) -> Api {
    Api(async {
        let t = tenant_of(q.tenant.as_deref())?;
        let health = c.storage().ports().operations.health().await;
        let counts = crate::counts::CountCache::get(&c, &t).await?;
        let last_hour: serde_json::Map<String, Value> = counts
            .last_hour
            .iter()
            .map(|(status, n, more)| (status.as_str().to_owned(), json!({"runs": n, "more": more})))
            .collect();
        Ok(json!({
            "tenant": t.as_str(),
            "health": to_json(&health)?,
            "stats": to_json(&counts.stats)?,
            "last_hour": last_hour,
            "counted_at": counts.taken_at.to_string(),
        }))
    }
    .await)
}

pub(crate) async fn runs(State(c): State<Arc<Console>>, Query(q): Query<RunsQuery>) -> Api {
    Api(async {
        let t = tenant_of(q.tenant.as_deref())?;
        let page = c
            .storage()
            .ports()
            .runs
            .query(&t, crate::pages::runs::run_query(&q)?)
            .await?;
        Ok(json!({"items": to_json(&page.items)?, "next": to_json(&page.next)?}))
    }
    .await)
}

pub(crate) async fn run(
    State(c): State<Arc<Console>>,
    Path(run): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Api {
    Api(async {
        let t = tenant_of(q.tenant.as_deref())?;
        let complete = c
            .storage()
            .ports()
            .runs
            .get_complete(&t, &RunId::new(run)?)
            .await?;
        to_json(&complete)
    }
    .await)
}

pub(crate) async fn queue(
    State(c): State<Arc<Console>>,
    Path(queue): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Api {
    Api(async {
        let t = tenant_of(q.tenant.as_deref())?;
        let name = QueueName::new(queue)?;
        let v = crate::pages::queue::load(&c, &t, &name).await?;
        Ok(json!({"stats": to_json(&v.stats)?, "scheduled": to_json(&v.scheduled)?, "running": to_json(&v.running)?, "dead": to_json(&v.dead)?}))
    }
    .await)
}

pub(crate) async fn workflows(State(c): State<Arc<Console>>, Query(q): Query<ListQuery>) -> Api {
    Api(async {
        let t = tenant_of(q.tenant.as_deref())?;
        let request = PageRequest {
            limit: 50,
            cursor: crate::pages::cursor_of(q.cursor)?,
        };
        let page = c.storage().ports().workflows.list(&t, request).await?;
        Ok(json!({"items": to_json(&page.items)?, "next": to_json(&page.next)?}))
    }
    .await)
}
