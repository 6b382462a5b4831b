//! URLs as they may be shown: in errors, logs, `doctor` and `health`. A password can
//! sit in the userinfo (`postgres://app:pw@db/x`) or in the query string
//! (`...?password=pw`, `?sslpassword=`, `?token=`); both are hidden.

/// Query parameters whose value is a secret (compared without case; a name that
/// contains one of them, such as `sslpassword` or `auth_token`, is hidden too).
const SECRET_PARAMS: [&str; 5] = ["password", "pass", "pwd", "secret", "token"];

/// `url` with every password replaced by `***`: the one in the userinfo and any
/// query parameter named like a secret. A string that is not a URL comes back as is.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The authority ends at the first '/'; an '@' after it belongs to the path.
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        out.push('?');
        let redacted: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&redacted.join("&"));
    }
    out
}

/// Whether a parameter or setting called `name` holds a secret (`password`,
/// `sslpassword`, `auth_token`, ...): the one rule for query strings, config settings
/// and anything else shown by name.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_wherever_they_are() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db:5432/flow",
                "postgres://app:***@db:5432/flow",
            ),
            ("postgres://app@db/flow", "postgres://app@db/flow"),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "postgres://db/flow?user=app&password=s3cret",
                "postgres://db/flow?user=app&password=***",
            ),
            (
                "postgres://db/flow?sslmode=require&sslpassword=s3cret",
                "postgres://db/flow?sslmode=require&sslpassword=***",
            ),
            (
                "rediss://u:p%40ss@h/0?auth_token=s3cret&x=1",
                "rediss://u:***@h/0?auth_token=***&x=1",
            ),
            ("s3://bucket/a@b/metrics.db", "s3://bucket/a@b/metrics.db"),
            ("sqlite:./flowstore.db", "sqlite:./flowstore.db"),
            ("not a url", "not a url"),
        ] {
            let got = redact_url(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("s3cret"), "{got}");
        }
    }
}
