//! Redis errors mapped to kinds: dropped connections, timeouts, a server loading its
//! data or busy with a script are `Unavailable` (retryable); the rest are backend
//! errors. Scripts never raise errors for expected outcomes: they return codes the
//! adapter turns into `NotFound`, `AlreadyExists`, `PreconditionFailed`, `LeaseLost`
//! or `Immutable`. The driver's error is kept as the source.

use redis::{ErrorKind as RedisKind, RedisError, RetryMethod};
use storage_ports::Error;

/// Maps a Redis error raised by `operation`, keeping it as the source.
#[must_use]
pub fn map_redis_error(e: RedisError, operation: &'static str) -> Error {
    // A reply of the wrong shape is never cured by retrying.
    let malformed = matches!(e.kind(), RedisKind::UnexpectedReturnType | RedisKind::Parse);
    let retryable = !malformed
        && (e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.retry_method(),
                RetryMethod::Reconnect | RetryMethod::RetryImmediately | RetryMethod::WaitAndRetry
            )
            || e.code()
                .is_some_and(|c| matches!(c, "BUSY" | "LOADING" | "MASTERDOWN" | "TRYAGAIN")));
    let err = if retryable {
        Error::unavailable("Redis is unavailable")
    } else if malformed {
        Error::corrupt("Redis returned what flowstore did not store")
    } else {
        Error::backend(match e.code() {
            Some(code) => format!("Redis failed ({code})"),
            None => "Redis failed".to_owned(),
        })
    };
    err.with_operation(operation).with_source(e)
}

/// `?`-friendly mapping with the operation name.
pub(crate) trait RedisResultExt<T> {
    fn op(self, operation: &'static str) -> Result<T, Error>;
}

impl<T> RedisResultExt<T> for Result<T, RedisError> {
    fn op(self, operation: &'static str) -> Result<T, Error> {
        self.map_err(|e| map_redis_error(e, operation))
    }
}

/// Parses stored JSON.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::corrupt(format!("stored {what} cannot be read: {e}")))
}

/// Serializes for storage.
pub(crate) fn encode<T: serde::Serialize>(v: &T, what: &str) -> Result<String, Error> {
    serde_json::to_string(v)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be stored: {e}")))
}
