//! `flowstore workflow diff <id> <from> <to>`: a unified diff of two versions'
//! definitions, each rendered as the YAML a person would read, coloured when standard
//! output is a terminal (never in pipes or files).

use std::io::IsTerminal;

use serde_json::json;
use similar::{ChangeTag, TextDiff};
use storage_ports::WorkflowId;
use storage_wiring::TenantView;

use crate::commands::{emit, Ctx, Failure, Out};

/// The unified diff of `old` and `new`, with `---`/`+++` headers naming the versions;
/// coloured (red removals, green additions, cyan hunk headers) when `colour`.
#[must_use]
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str, colour: bool) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    let (red, green, cyan, reset) = if colour {
        ("\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    out.push_str(&format!(
        "{red}--- {old_name}{reset}\n{green}+++ {new_name}{reset}\n"
    ));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&format!("{cyan}{}{reset}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let (sign, on) = match change.tag() {
                ChangeTag::Delete => ("-", red),
                ChangeTag::Insert => ("+", green),
                ChangeTag::Equal => (" ", ""),
            };
            let off = if on.is_empty() { "" } else { reset };
            let line = change.value();
            let newline = if line.ends_with('\n') { "" } else { "\n" };
            out.push_str(&format!("{on}{sign}{line}{off}{newline}"));
        }
    }
    out
}

/// `flowstore workflow diff`.
pub async fn workflow_diff(
    view: &TenantView,
    ctx: &Ctx,
    id: &WorkflowId,
    from: u32,
    to: u32,
) -> Out {
    let (a, b) = (view.workflow(id, from).await?, view.workflow(id, to).await?);
    let yaml = |v: &serde_json::Value| {
        serde_saphyr::to_string(v)
            .map_err(|e| Failure::Other(format!("cannot render {id} as YAML: {e}")))
    };
    let (old, new) = (yaml(&a.definition)?, yaml(&b.definition)?);
    let (old_name, new_name) = (format!("{id} version {from}"), format!("{id} version {to}"));
    let plain = unified(&old, &new, &old_name, &new_name, false);
    let shown = if !ctx.json() && std::io::stdout().is_terminal() {
        unified(&old, &new, &old_name, &new_name, true)
    } else {
        plain.clone()
    };
    emit(
        ctx,
        &json!({"workflow": id, "from": from, "to": to, "same": old == new, "diff": plain}),
        || shown.trim_end().to_owned(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn a_changed_line_is_removed_and_added() {
        let d = unified("a: 1\nb: 2\n", "a: 1\nb: 3\n", "v1", "v2", false);
        assert!(d.starts_with("--- v1\n+++ v2\n@@"), "{d}");
        assert!(d.contains("\n-b: 2\n+b: 3\n"), "{d}");
        assert!(d.contains("\n a: 1\n"), "{d}");
        assert!(!d.contains('\x1b'), "no colour when asked for none");
    }

    #[test]
    fn identical_texts_have_headers_only() {
        assert_eq!(unified("x\n", "x\n", "v1", "v2", false), "--- v1\n+++ v2\n");
    }

    #[test]
    fn colour_marks_changes() {
        let d = unified("a\n", "b\n", "v1", "v2", true);
        assert!(
            d.contains("\x1b[31m-a\n\x1b[0m") || d.contains("\x1b[31m-a"),
            "{d:?}"
        );
        assert!(d.contains("\x1b[32m+b"), "{d:?}");
    }
}
