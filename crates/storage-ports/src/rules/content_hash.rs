//! Canonical content hashing (spec W1).
//!
//! A definition's hash is the SHA-256 of its canonical JSON form: object keys sorted
//! by their UTF-8 bytes, no insignificant whitespace, numbers as `serde_json` prints
//! them. Two definitions that are equal as JSON values hash the same on every backend,
//! whatever key order a file or a database returned.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `sha256:<64 lowercase hex digits>`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash(String);

const PREFIX: &str = "sha256:";

impl ContentHash {
    /// The hash of `value`'s canonical form.
    #[must_use]
    pub fn of(value: &Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(canonical_json(value).as_bytes());
        Self(format!(
            "{PREFIX}{}",
            crate::rules::hex::encode(&hasher.finalize())
        ))
    }

    /// Parses a stored hash.
    ///
    /// # Errors
    /// [`ErrorKind::CorruptData`](crate::ErrorKind) when `s` is not `sha256:` and 64 hex digits.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = s.len() == PREFIX.len() + 64
            && s.starts_with(PREFIX)
            && s[PREFIX.len()..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::corrupt(format!(
                "{s:?} is not a content hash (sha256:<64 hex>)"
            )))
        }
    }

    /// The text form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContentHash {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<ContentHash> for String {
    fn from(h: ContentHash) -> Self {
        h.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.0)
    }
}

/// The canonical JSON text of `value`: keys sorted, compact.
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":null}}"#).unwrap_or_default();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap_or_default();
        assert_eq!(ContentHash::of(&a), ContentHash::of(&b));
        assert_ne!(ContentHash::of(&a), ContentHash::of(&json!({"b": 2})));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert!(ContentHash::parse(ContentHash::of(&a).as_str()).is_ok());
        assert!(ContentHash::parse("sha256:xyz").is_err());
    }
}
