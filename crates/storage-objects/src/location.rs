//! Where an object is: `s3://bucket/key`.

use std::fmt;

use storage_ports::{Error, Result};

/// A bucket and a key in it, parsed from `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    bucket: String,
    key: String,
}

impl ObjectLocation {
    /// Parses `s3://bucket/key`. A key ending in `/` names a prefix (a "directory").
    ///
    /// # Errors
    /// `InvalidInput` for another scheme, a missing or malformed bucket name, or an
    /// empty key.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::invalid_input(format!(
                "{url:?} is not an object location: it must start with s3://"
            ))
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(Error::invalid_input(format!(
                "{url:?}: bucket names are 3 to 63 lowercase letters, digits, dots and hyphens"
            )));
        }
        if key.is_empty() || key.split('/').any(|p| p == "." || p == "..") {
            return Err(Error::invalid_input(format!(
                "{url:?}: name an object after the bucket (s3://{bucket}/path/to/object), without . or .. parts"
            )));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// The location of `key` in `bucket`, both as the service listed them.
    #[must_use]
    pub fn from_parts(bucket: &str, key: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }

    /// Whether `text` looks like an object location rather than a local path.
    #[must_use]
    pub fn is_object_url(text: &str) -> bool {
        text.starts_with("s3://")
    }

    /// The bucket.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key in the bucket.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The location of `name` under this one taken as a prefix.
    #[must_use]
    pub fn join(&self, name: &str) -> Self {
        let sep = if self.key.ends_with('/') { "" } else { "/" };
        Self {
            bucket: self.bucket.clone(),
            key: format!("{}{sep}{name}", self.key),
        }
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_key() {
        let l = ObjectLocation::parse("s3://ci-metrics/db/metrics.db").ok();
        assert_eq!(
            l.as_ref().map(|l| (l.bucket(), l.key())),
            Some(("ci-metrics", "db/metrics.db"))
        );
        assert_eq!(
            l.map(|l| l.join("x").to_string()),
            Some("s3://ci-metrics/db/metrics.db/x".to_owned())
        );
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for bad in [
            "/tmp/x.db",
            "s3://",
            "s3://ab/x",
            "s3://Bucket/x",
            "s3://bucket",
            "s3://bucket/",
            "s3://bucket/a/../b",
        ] {
            assert!(ObjectLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
