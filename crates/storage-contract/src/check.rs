//! What every contract test gets, and the small assertion vocabulary they share.

use std::fmt;

use storage_ports::{Capabilities, Error, ErrorKind, StoreSet, TenantId};

/// A failed expectation, with the text that explains it.
pub struct Failure(pub String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self(format!("unexpected storage error: {e}"))
    }
}

/// The outcome of one behaviour test.
pub type TestResult = Result<(), Failure>;

/// The store under test and two fresh tenants.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Every port of the adapter.
    pub set: StoreSet,
    /// A fresh tenant.
    pub tenant: TenantId,
    /// A second fresh tenant, for isolation tests.
    pub other: TenantId,
    /// The adapter's capabilities.
    pub caps: Capabilities,
}

impl Ctx {
    /// A context with two fresh random tenants.
    #[must_use]
    pub fn new(set: StoreSet) -> Self {
        let caps = set.capabilities();
        Self {
            set,
            tenant: TenantId::random(),
            other: TenantId::random(),
            caps,
        }
    }
}

/// Fails the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!($($arg)+)));
        }
    };
}

/// Fails unless `a == b`, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($arg:tt)+) => {{
        match (&$a, &$b) {
            (a, b) => {
                if a != b {
                    return Err($crate::Failure(format!("{}: left {:?} != right {:?}", format!($($arg)+), a, b)));
                }
            }
        }
    }};
}

/// Expects `r` to fail with `kind` (N5). Every error the suite provokes is one that
/// repeating the call cannot change, so it must also say it is not retryable, and its
/// message must say something.
///
/// # Errors
/// A [`Failure`] when `r` succeeded, failed with another kind, or failed with the
/// right kind marked retryable or without a message.
pub fn expect_kind<T: fmt::Debug>(
    r: Result<T, Error>,
    kind: ErrorKind,
    what: &str,
) -> Result<Error, Failure> {
    match r {
        Err(e) if e.kind() == kind && e.is_retryable() => Err(Failure(format!(
            "{what}: a {kind} error must not be retryable (repeating the call cannot change it): {e}"
        ))),
        Err(e) if e.kind() == kind && e.message().trim().is_empty() => Err(Failure(format!(
            "{what}: a {kind} error must say what failed: {e:?}"
        ))),
        Err(e) if e.kind() == kind => Ok(e),
        Err(e) => Err(Failure(format!(
            "{what}: expected a {kind} error, got: {e}"
        ))),
        Ok(v) => Err(Failure(format!(
            "{what}: expected a {kind} error, got Ok({v:?})"
        ))),
    }
}

/// Shorthand to build ids in tests: the literals are valid.
pub(crate) fn id<T: TryFrom<String, Error = Error>>(s: &str) -> Result<T, Failure> {
    T::try_from(s.to_owned()).map_err(Failure::from)
}
