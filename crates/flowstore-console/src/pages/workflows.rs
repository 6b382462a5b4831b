//! `/workflows`: every workflow's latest version; `/workflows/{id}`: its versions with
//! author, time and hash, and the lineage drawn as a graph; `/workflows/{id}/diff`: two
//! versions side by side, the changed lines marked.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use similar::{ChangeTag, TextDiff};
use storage_ports::{PageRequest, VersionMeta, WorkflowId};

use crate::html::{esc, page as layout, url};
use crate::{tenant_of, Console, PageError};

const PAGE: usize = 50;

/// `?tenant=` and a cursor.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) tenant: Option<String>,
    pub(crate) cursor: Option<String>,
}

pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let request = PageRequest {
        limit: PAGE,
        cursor: crate::pages::cursor_of(q.cursor)?,
    };
    let page = console
        .storage()
        .ports()
        .workflows
        .list(&t, request)
        .await?;
    let tu = url(t.as_str());
    let mut body = String::from(
        "<table><tr><th>workflow</th><th>latest</th><th>author</th><th>created</th><th>hash</th></tr>",
    );
    for m in &page.items {
        let _ = write!(
            body,
            "<tr><td><a href=\"/workflows/{idu}?tenant={tu}\">{id}</a></td><td>v{v}</td><td>{a}</td><td>{at}</td><td><code>{h}</code></td></tr>",
            idu = url(m.workflow_id.as_str()),
            id = esc(m.workflow_id.as_str()),
            v = m.version,
            a = esc(m.author.as_deref().unwrap_or("")),
            at = m.created_at,
            h = esc(&short_hash(m)),
        );
    }
    body.push_str("</table>");
    if let Some(next) = &page.next {
        let _ = write!(
            body,
            "<p><a href=\"/workflows?tenant={tu}&cursor={}\">next page</a></p>",
            url(next.as_str())
        );
    }
    Ok(Html(layout("Workflows", t.as_str(), &body)))
}

fn short_hash(m: &VersionMeta) -> String {
    m.content_hash.to_string().chars().take(16).collect()
}

/// A version's distance from its root: its column in the lineage, so that branches
/// stand apart.
fn depth_of<'a>(versions: &'a [VersionMeta], mut m: &'a VersionMeta) -> f64 {
    let mut d = 0u32;
    while let Some(p) = m
        .parent
        .and_then(|p| versions.iter().find(|x| x.version == p))
    {
        d += 1;
        m = p;
        if d as usize > versions.len() {
            break;
        }
    }
    f64::from(d)
}

/// The lineage as SVG: a dot per version, top to bottom, each joined to its parent.
fn lineage_svg(versions: &[VersionMeta]) -> String {
    const ROW: f64 = 28.0;
    let position = |v: u32| versions.iter().position(|m| m.version == v);
    let depth = |m: &VersionMeta| depth_of(versions, m);
    #[allow(clippy::cast_precision_loss)]
    let height = ROW * versions.len() as f64 + ROW;
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"{height}\" role=\"img\" aria-label=\"lineage\">");
    for (i, m) in versions.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let (x, y) = (20.0 + 30.0 * depth(m), ROW * i as f64 + ROW / 2.0);
        if let Some(j) = m.parent.and_then(position) {
            let parent = &versions[j];
            #[allow(clippy::cast_precision_loss)]
            let (px, py) = (20.0 + 30.0 * depth(parent), ROW * j as f64 + ROW / 2.0);
            let _ = write!(
                out,
                "<line x1=\"{px}\" y1=\"{py}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#888\"/>"
            );
        }
        let _ = write!(
            out,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"6\" fill=\"#246\"/><text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">v{v} {a}</text>",
            tx = x + 12.0,
            ty = y + 4.0,
            v = m.version,
            a = esc(m.author.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</svg>");
    out
}

pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let id = WorkflowId::new(id)?;
    let versions = console
        .storage()
        .ports()
        .workflows
        .versions(&t, &id)
        .await?;
    let tu = url(t.as_str());
    let idu = url(id.as_str());
    let mut body = String::from("<h2>Versions</h2><table><tr><th>version</th><th>parent</th><th>author</th><th>created</th><th>hash</th></tr>");
    for m in &versions {
        let _ = write!(
            body,
            "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            m.version,
            m.parent.map(|p| format!("v{p}")).unwrap_or_default(),
            esc(m.author.as_deref().unwrap_or("")),
            m.created_at,
            esc(&short_hash(m)),
        );
    }
    body.push_str("</table><h2>Lineage</h2>");
    body.push_str(&lineage_svg(&versions));
    if let (Some(first), Some(last)) = (versions.first(), versions.last()) {
        let _ = write!(
            body,
            "<h2>Compare</h2><form action=\"/workflows/{idu}/diff\"><input type=\"hidden\" name=\"tenant\" value=\"{t}\">\
             <input name=\"a\" size=\"4\" value=\"{a}\"> with <input name=\"b\" size=\"4\" value=\"{b}\"> <button>Diff</button></form>",
            t = esc(t.as_str()),
            a = first.version,
            b = last.version,
        );
    }
    let _ = write!(
        body,
        "<p><a href=\"/runs?tenant={tu}&workflow={idu}\">runs of {id}</a> <a href=\"/metrics/{idu}?tenant={tu}\">metrics of {id}</a></p>",
        id = esc(id.as_str())
    );
    Ok(Html(layout(
        &format!("Workflow {}", id.as_str()),
        t.as_str(),
        &body,
    )))
}

/// `?tenant=&a=&b=`: the versions to compare.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DiffQuery {
    tenant: Option<String>,
    a: u32,
    b: u32,
}

pub(crate) async fn diff(
    State(console): State<Arc<Console>>,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Html<String>, PageError> {
    let t = tenant_of(q.tenant.as_deref())?;
    let id = WorkflowId::new(id)?;
    let workflows = &console.storage().ports().workflows;
    let (a, b) = (
        workflows.get(&t, &id, q.a).await?,
        workflows.get(&t, &id, q.b).await?,
    );
    let yaml = |v: &serde_json::Value| serde_saphyr::to_string(v).unwrap_or_else(|_| v.to_string());
    let (old, new) = (yaml(&a.definition), yaml(&b.definition));
    let mut body = format!(
        "<table class=\"diff\"><tr><th>v{}</th><th>v{}</th></tr>",
        q.a, q.b
    );
    for change in TextDiff::from_lines(&old, &new).iter_all_changes() {
        let line = esc(change.value().trim_end_matches('\n'));
        let row = match change.tag() {
            ChangeTag::Equal => {
                format!("<tr><td><pre>{line}</pre></td><td><pre>{line}</pre></td></tr>")
            }
            ChangeTag::Delete => format!(
                "<tr class=\"del\"><td class=\"bad\"><pre>- {line}</pre></td><td></td></tr>"
            ),
            ChangeTag::Insert => {
                format!("<tr class=\"ins\"><td></td><td class=\"ok\"><pre>+ {line}</pre></td></tr>")
            }
        };
        body.push_str(&row);
    }
    body.push_str("</table>");
    Ok(Html(layout(
        &format!("Workflow {}: v{} and v{}", id.as_str(), q.a, q.b),
        t.as_str(),
        &body,
    )))
}
