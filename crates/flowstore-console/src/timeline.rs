//! A run's node executions as bars on a time axis (SVG, no script): where the time
//! went, what failed, what was retried.

use std::fmt::Write as _;

use storage_ports::{NodeExecution, NodeStatus, Timestamp};

use crate::html::esc;

const WIDTH: f64 = 800.0;
const ROW: f64 = 22.0;
const LABEL: f64 = 160.0;

/// The SVG of `nodes`, from `start` to `end` (a running node ends at `end`).
#[must_use]
pub fn svg(nodes: &[&NodeExecution], start: Timestamp, end: Timestamp) -> String {
    if nodes.is_empty() {
        return "<p class=\"muted\">no node executions</p>".into();
    }
    #[allow(clippy::cast_precision_loss)]
    let span = (end.as_micros() - start.as_micros()).max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    let x =
        |t: Timestamp| LABEL + (t.as_micros() - start.as_micros()) as f64 / span * (WIDTH - LABEL);
    #[allow(clippy::cast_precision_loss)]
    let height = ROW * nodes.len() as f64 + ROW;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"timeline\">"
    );
    for (i, n) in nodes.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = ROW * i as f64;
        let (from, to) = (x(n.started_at), x(n.ended_at.unwrap_or(end)));
        let colour = match n.status {
            NodeStatus::Succeeded => "#3a3",
            NodeStatus::Failed => "#c33",
            _ => "#999",
        };
        let retries = if n.retries > 0 {
            format!(", {} retries", n.retries)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{id}</text>\
             <rect x=\"{from:.1}\" y=\"{ry}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{colour}\"><title>{id} ({ty_}): {status}{retries}</title></rect>",
            ty = y + 15.0,
            id = esc(n.node_id.as_str()),
            ry = y + 4.0,
            w = (to - from).max(2.0),
            h = ROW - 8.0,
            ty_ = esc(&n.node_type),
            status = format!("{:?}", n.status).to_lowercase(),
        );
    }
    out.push_str("</svg>");
    out
}
