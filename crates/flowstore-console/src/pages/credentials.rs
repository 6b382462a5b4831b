//! `/credentials`: the tenant's credential keys. A secret value is never read here,
//! so it can never be rendered or sent.

use std::fmt::Write as _;
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
    let keys = console.storage().ports().credentials.list(&t).await?;
    let mut body = String::from("<table><tr><th>key</th></tr>");
    for k in &keys {
        let _ = write!(body, "<tr><td>{}</td></tr>", esc(k.as_str()));
    }
    body.push_str("</table><p class=\"muted\">values are never shown</p>");
    Ok(Html(layout("Credentials", t.as_str(), &body)))
}
