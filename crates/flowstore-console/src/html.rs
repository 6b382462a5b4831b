//! HTML building blocks: escaping (every value from storage goes through [`esc`]) and
//! the page layout shared by all pages.

use std::fmt::Write as _;

/// `s` safe inside HTML text and double-quoted attributes.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one component of a URL query (percent-encoded).
#[must_use]
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:0;color:#222}\
nav{background:#223;padding:8px 16px;color:#ccd}nav a{color:#fff;margin-right:16px;text-decoration:none}nav form{display:inline;margin-left:8px}\
main{padding:16px}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}\
.ok{color:#070}.bad{color:#b00}.muted{color:#777}pre{background:#f6f6f6;padding:8px;overflow:auto}\
.diff pre{margin:0;padding:0 4px}tr.del td{background:#fee}tr.ins td{background:#efe}";

/// A whole page: navigation for `tenant`, the title, the body.
#[must_use]
pub fn page(title: &str, tenant: &str, body: &str) -> String {
    let t = url(tenant);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\"><title>{title} - flowstore</title><style>{STYLE}</style></head>\
         <body><nav><a href=\"/?tenant={t}\">Overview</a><a href=\"/workflows?tenant={t}\">Workflows</a><a href=\"/runs?tenant={t}\">Runs</a><a href=\"/credentials?tenant={t}\">Credentials</a>\
         <form class=\"tenant\" method=\"get\" action=\"/\">tenant <input name=\"tenant\" size=\"12\" value=\"{tenant_shown}\"> <button>Switch</button></form></nav><main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title),
        tenant_shown = esc(tenant),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
        assert_eq!(url("a b/é"), "a%20b%2F%C3%A9");
    }
}
