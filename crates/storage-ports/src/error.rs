//! The one error type every port returns.
//!
//! A host matches on [`ErrorKind`] (spec N5); the message and the context pairs say
//! what failed and where. Messages never contain secrets or payload values: adapters
//! put ids, sizes and rule names in them, nothing a user stored.

use std::fmt;

/// What kind of failure this is: the part of an error a host program branches on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for does not exist (in this tenant).
    NotFound,
    /// The write contradicts what is stored: an immutable version with other content,
    /// a stale revision, a stale lease, an id that already exists.
    Conflict,
    /// The caller's input breaks a rule (an id, a size limit, a cursor); nothing was
    /// written.
    InvalidInput,
    /// The backend does not offer this operation; see its `Capabilities`.
    Unsupported,
    /// The backend could not be reached or was busy; retrying later may succeed.
    Unavailable,
    /// Stored data could not be read back (damaged file, hash mismatch, bad row).
    CorruptData,
    /// Anything else the backend reported; not retried.
    Backend,
}

impl ErrorKind {
    /// Short lowercase name, stable for logs and `--json` output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
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

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed storage operation: a kind, a message, the operation, context pairs and
/// the underlying cause.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    operation: Option<&'static str>,
    context: Vec<(&'static str, String)>,
    #[source]
    source: Option<Source>,
}

/// Result alias used by every port.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message that says what failed.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
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

    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
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

    /// Whether retrying the same call later may succeed. Only [`ErrorKind::Unavailable`]
    /// is retryable: a conflict or invalid input will fail the same way again.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
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
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
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
        let e = Error::conflict("version 3 exists with other content")
            .with_operation("workflows.put")
            .with_context("workflow", "etl");
        assert_eq!(
            e.to_string(),
            "conflict in workflows.put: version 3 exists with other content (workflow=etl)"
        );
        assert!(!e.is_retryable());
        assert!(Error::unavailable("down").is_retryable());
    }
}
