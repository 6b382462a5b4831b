//! The one error type every port returns.
//!
//! A host matches on [`ErrorKind`] (spec N5); the message and the context pairs say
//! what failed and where. Messages never contain secrets or payload values: adapters
//! put ids, sizes and rule names in them, nothing a user stored.

use std::fmt;

/// What kind of failure this is: the part of an error a host program branches on.
///
/// Whether to try again is a separate property ([`Error::is_retryable`],
/// [`ErrorStatus`]): a kind says what happened, the status whether repeating the call
/// may end differently.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for does not exist (in this tenant).
    NotFound,
    /// The id is taken: a run, job, document or import whose id exists already.
    AlreadyExists,
    /// The write assumed a state that no longer holds: a stale document revision,
    /// other content at an existing workflow version, a version number that was used.
    PreconditionFailed,
    /// The lease is no longer current: its fencing token is stale, or the job was
    /// acknowledged or is dead. The worker must stop working on the job.
    LeaseLost,
    /// The job was cancelled (Q14): the holder's heartbeat, progress, ack, fail or
    /// snooze answers this once a cancel was asked for, and the job is finished as
    /// cancelled. The worker must stop; nothing it sends later changes the job.
    Cancelled,
    /// The thing is finished and cannot change: a finished run's log.
    Immutable,
    /// The caller's input breaks a rule (an id, a size limit, a cursor); nothing was
    /// written.
    InvalidInput,
    /// The backend does not offer this operation; see its `Capabilities`.
    Unsupported,
    /// The backend could not be reached or was busy.
    Unavailable,
    /// Stored data could not be read back (damaged file, hash mismatch, bad row).
    CorruptData,
    /// Anything else the backend reported.
    Backend,
}

impl ErrorKind {
    /// Every kind, for tables and docs.
    pub const ALL: [Self; 11] = [
        Self::NotFound,
        Self::AlreadyExists,
        Self::PreconditionFailed,
        Self::LeaseLost,
        Self::Cancelled,
        Self::Immutable,
        Self::InvalidInput,
        Self::Unsupported,
        Self::Unavailable,
        Self::CorruptData,
        Self::Backend,
    ];

    /// Short lowercase name, stable for logs, metrics labels and `--json` output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PreconditionFailed => "precondition_failed",
            Self::LeaseLost => "lease_lost",
            Self::Cancelled => "cancelled",
            Self::Immutable => "immutable",
            Self::InvalidInput => "invalid_input",
            Self::Unsupported => "unsupported",
            Self::Unavailable => "unavailable",
            Self::CorruptData => "corrupt_data",
            Self::Backend => "backend",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether repeating the failed call may succeed (OpenDAL's error status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    /// Repeating the call fails the same way.
    Permanent,
    /// The condition may pass: retrying the same call later may succeed.
    Temporary,
    /// It was temporary, but the retries allowed were spent: do not retry again.
    Persistent,
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed storage operation: a kind, a retry status, a message, the operation,
/// context pairs and the underlying cause.
///
/// `Display` shows the kind, the operation, the message and the context; the driver's
/// own error is kept as [`std::error::Error::source`] and not repeated there, because a
/// driver's text may quote stored values.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    status: ErrorStatus,
    message: String,
    operation: Option<&'static str>,
    context: Vec<(&'static str, String)>,
    #[source]
    source: Option<Source>,
}

/// Result alias used by every port.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message that says what failed. `Unavailable`
    /// starts [`ErrorStatus::Temporary`], every other kind `Permanent`; see
    /// [`Error::temporary`] and [`Error::permanent`] to say otherwise.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: if kind == ErrorKind::Unavailable {
                ErrorStatus::Temporary
            } else {
                ErrorStatus::Permanent
            },
            message: message.into(),
            operation: None,
            context: Vec::new(),
            source: None,
        }
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::AlreadyExists`].
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    /// Shorthand for [`ErrorKind::PreconditionFailed`].
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, message)
    }

    /// Shorthand for [`ErrorKind::LeaseLost`].
    pub fn lease_lost(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LeaseLost, message)
    }

    /// Shorthand for [`ErrorKind::Cancelled`].
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled, message)
    }

    /// Shorthand for [`ErrorKind::Immutable`].
    pub fn immutable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Immutable, message)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The backend named `backend` does not offer `what`.
    pub fn unsupported(backend: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("the {backend} backend does not support {what}"),
        )
        .with_context("backend", backend)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::CorruptData`].
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CorruptData, message)
    }

    /// Shorthand for [`ErrorKind::Backend`].
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }

    /// Marks the error as one that may pass when the same call is repeated later
    /// (a serialization failure, a lock timeout), whatever its kind.
    #[must_use]
    pub fn temporary(mut self) -> Self {
        self.status = ErrorStatus::Temporary;
        self
    }

    /// Marks the error as one that repeating will not change.
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.status = ErrorStatus::Permanent;
        self
    }

    /// Marks a temporary error whose retries were spent (set by the retry layer), so
    /// that an outer retry does not multiply the attempts.
    #[must_use]
    pub fn persistent(mut self) -> Self {
        if self.status == ErrorStatus::Temporary {
            self.status = ErrorStatus::Persistent;
        }
        self
    }

    /// Names the port operation that failed (e.g. `"workflows.put"`).
    #[must_use]
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Adds a context pair such as `("tenant", "acme")`. Never pass a payload or secret.
    #[must_use]
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind to branch on.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without context.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The operation, when one was recorded.
    #[must_use]
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// The context pairs in the order they were added.
    #[must_use]
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// Whether repeating the call may end differently.
    #[must_use]
    pub fn status(&self) -> ErrorStatus {
        self.status
    }

    /// Whether retrying the same call later may succeed ([`ErrorStatus::Temporary`]).
    /// Whether it is safe to repeat is the operation's property, not the error's:
    /// the retry layer asks the operation (`storage_ports::operation`).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.status == ErrorStatus::Temporary
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(op) = self.operation {
            write!(f, " in {op}")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str(")")?;
        }
        // The cause is not repeated here: it is `source()`, and a driver's text may
        // quote a stored value, which a message never does.
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("message", &self.message)
            .field("operation", &self.operation)
            .field("context", &self.context)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_operation_and_context() {
        let e = Error::precondition_failed("version 3 exists with other content")
            .with_operation("workflows.put")
            .with_context("workflow", "etl");
        assert_eq!(
            e.to_string(),
            "precondition_failed in workflows.put: version 3 exists with other content (workflow=etl)"
        );
    }

    #[test]
    fn retryability_is_a_status_apart_from_the_kind() {
        let cases = [
            (Error::unavailable("down"), true),
            (Error::unavailable("down").persistent(), false),
            (Error::unavailable("down").permanent(), false),
            (Error::backend("serialization failure").temporary(), true),
            (Error::lease_lost("stale"), false),
            (Error::already_exists("taken"), false),
            (Error::not_found("gone").persistent(), false),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e:?}");
        }
        assert_eq!(
            Error::not_found("gone").persistent().status(),
            ErrorStatus::Permanent,
            "only a temporary error becomes persistent"
        );
    }

    #[test]
    fn the_source_is_kept() {
        let io = std::io::Error::other("connection reset");
        let e = Error::unavailable("lost").with_source(io);
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset"));
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
