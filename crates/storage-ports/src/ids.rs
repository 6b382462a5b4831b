//! Validated id newtypes (spec N1).
//!
//! Every id is checked once, when it is constructed; afterwards adapters may use it
//! in a path, a key or a query without escaping, because the rules exclude every
//! separator (`/`, `\`, `:`), NUL, whitespace, and the names `.` and `..`.
//! An id that breaks its rule is an [`ErrorKind::InvalidInput`](crate::ErrorKind)
//! whose message names the rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The rule one kind of id follows: what it is called, the pattern as people read it,
/// the character classes and the length bounds.
#[derive(Debug, Clone, Copy)]
pub struct IdRule {
    /// What the id is, e.g. `"tenant id"`.
    pub what: &'static str,
    /// The rule as a regex-like pattern, quoted in error messages.
    pub pattern: &'static str,
    /// Longest accepted id, in bytes (all accepted characters are ASCII).
    pub max_len: usize,
    /// Whether the first character may be only a lowercase letter or digit.
    first_lower_alnum: bool,
    /// Whether upper-case letters are accepted.
    upper: bool,
    /// Whether `.` is accepted (the names `.` and `..` never are).
    dot: bool,
}

impl IdRule {
    /// Checks `s` against the rule.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) naming the rule and the first
    /// offending character, or the length.
    pub fn check(&self, s: &str) -> Result<()> {
        let fail = |why: String| {
            Error::invalid_input(format!(
                "invalid {} {}: {why}; the rule is {}",
                self.what,
                shown(s),
                self.pattern
            ))
            .with_context("rule", self.pattern)
        };
        if s.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if s.len() > self.max_len {
            return Err(fail(format!(
                "it is {} bytes long, the limit is {}",
                s.len(),
                self.max_len
            )));
        }
        if s == "." || s == ".." {
            return Err(fail("`.` and `..` are reserved path names".into()));
        }
        for (i, c) in s.char_indices() {
            let ok = match c {
                'a'..='z' | '0'..='9' => true,
                'A'..='Z' => self.upper && !(i == 0 && self.first_lower_alnum),
                '_' | '-' => !(i == 0 && self.first_lower_alnum),
                '.' => self.dot && !(i == 0 && self.first_lower_alnum),
                _ => false,
            };
            if !ok {
                return Err(fail(format!("character {c:?} at byte {i} is not allowed")));
            }
        }
        Ok(())
    }
}

/// Quotes user input for an error message, cut to a readable length.
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

/// `[a-z0-9][a-z0-9_-]{0,63}`: tenants and collections, safe as a SQL identifier part,
/// a directory and a Redis key segment.
const LOWER_NAME: (&str, usize, bool, bool, bool) =
    ("[a-z0-9][a-z0-9_-]{0,63}", 64, true, false, false);
/// `[A-Za-z0-9._-]{1,128}`, not `.` or `..`: user-facing names.
const NAME: (&str, usize, bool, bool, bool) = (
    "[A-Za-z0-9._-]{1,128}, not `.` or `..`",
    128,
    false,
    true,
    true,
);

/// `[A-Za-z0-9._-]{1,96}`, not `.` or `..`: a schedule's name, short enough that the
/// job id of one of its ticks (`s.<name>.<tick>`) stays within the job id rule.
const SCHEDULE_NAME: (&str, usize, bool, bool, bool) = (
    "[A-Za-z0-9._-]{1,96}, not `.` or `..`",
    96,
    false,
    true,
    true,
);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $rule:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The rule this id follows.
            pub const RULE: IdRule = IdRule {
                what: $what,
                pattern: $rule.0,
                max_len: $rule.1,
                first_lower_alnum: $rule.2,
                upper: $rule.3,
                dot: $rule.4,
            };

            /// Validates `s` and wraps it.
            ///
            /// # Errors
            /// [`ErrorKind::InvalidInput`](crate::ErrorKind) naming the rule.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                Self::RULE.check(&s)?;
                Ok(Self(s))
            }

            /// The id as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! generated {
    ($name:ident) => {
        impl $name {
            /// A fresh, time-ordered unique id (UUID v7, hyphenless).
            #[must_use]
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().simple().to_string())
            }
        }
    };
}

id_type!(
    /// An isolation scope present in every operation.
    TenantId, "tenant id", LOWER_NAME
);
id_type!(
    /// A workflow definition's id; all its versions share it.
    WorkflowId, "workflow id", NAME
);
id_type!(
    /// One run (execution) of one workflow version.
    RunId, "run id", NAME
);
id_type!(
    /// A node of a workflow, as recorded in node executions.
    NodeId, "node id", NAME
);
id_type!(
    /// The name under which a credential is kept in a tenant.
    CredentialKey, "credential key", NAME
);
id_type!(
    /// A job queue's name.
    QueueName, "queue name", NAME
);
id_type!(
    /// One job in a queue.
    JobId, "job id", NAME
);
id_type!(
    /// A periodic job's schedule, unique in its tenant (Q19).
    ScheduleName, "schedule name", SCHEDULE_NAME
);
id_type!(
    /// A document collection's name.
    CollectionName, "collection name", LOWER_NAME
);
id_type!(
    /// One document in a collection.
    DocumentId, "document id", NAME
);
id_type!(
    /// A custom metric's name (e.g. `tokens`, `cost_usd`).
    MetricName, "metric name", NAME
);

generated!(RunId);
generated!(JobId);
generated!(DocumentId);

impl TenantId {
    /// A fresh random tenant id, e.g. for a test run that shares a server.
    #[must_use]
    pub fn random() -> Self {
        Self(format!("t{}", uuid::Uuid::now_v7().simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn rejects_traversal_separators_nul_and_length() {
        for bad in ["", "../x", "a/b", "a\\b", "a\0b", ".", "..", "a:b", "a b"] {
            let e = WorkflowId::new(bad).err();
            assert!(
                matches!(&e, Some(e) if e.kind() == ErrorKind::InvalidInput),
                "{bad:?}"
            );
        }
        assert!(WorkflowId::new("x".repeat(129)).is_err());
        assert!(WorkflowId::new("x".repeat(128)).is_ok());
        assert!(TenantId::new("Acme").is_err());
        assert!(TenantId::new("-acme").is_err());
        assert!(TenantId::new("acme-1_b").is_ok());
        assert!(TenantId::new("a".repeat(65)).is_err());
    }

    #[test]
    fn error_names_the_rule() {
        let e = TenantId::new("a/b")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("[a-z0-9][a-z0-9_-]{0,63}"), "{e}");
        assert!(e.contains("tenant id"), "{e}");
    }

    #[test]
    fn serde_validates() {
        let r: std::result::Result<WorkflowId, _> = serde_json::from_str("\"../x\"");
        assert!(r.is_err());
        let ok: WorkflowId = serde_json::from_str("\"etl.v2\"").unwrap_or_else(|_| unreachable!());
        assert_eq!(ok.as_str(), "etl.v2");
    }
}
