//! PostgreSQL and sqlx errors mapped to kinds (SQLSTATE classes): lost connections,
//! serialization failures, deadlocks and shutdowns are retryable (`Unavailable`);
//! unique violations are conflicts; bad values are invalid input; damaged pages and
//! undecodable rows are corrupt data.

use storage_ports::Error;

/// Maps a sqlx error raised by `operation`.
#[must_use]
pub fn map_sqlx_error(e: &sqlx::Error, operation: &'static str) -> Error {
    let err = match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                "23505" => Error::conflict(format!("already exists: {db}")),
                // NUL characters, which PostgreSQL text and JSONB cannot hold.
                "22P05" | "22021" => Error::invalid_input(format!(
                    "PostgreSQL cannot store this value (it holds a NUL character or invalid text): {db}"
                )),
                c if c.starts_with("22") || c.starts_with("23") => {
                    Error::invalid_input(format!("PostgreSQL refused the value: {db}"))
                }
                // 40001 serialization failure, 40P01 deadlock, 55P03 lock not available,
                // 57P0x shutdown and cannot-connect-now, 53xxx out of resources, 08xxx
                // connection exceptions: the same call may succeed when retried.
                c if c.starts_with("40")
                    || c == "55P03"
                    || c.starts_with("57P")
                    || c.starts_with("53")
                    || c.starts_with("08") =>
                {
                    Error::unavailable(format!("PostgreSQL asks to retry: {db}"))
                }
                "XX001" | "XX002" => Error::corrupt(format!("PostgreSQL reports damaged data: {db}")),
                _ => Error::backend(format!("postgres: {db} (SQLSTATE {code})")),
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => {
            Error::unavailable(format!("PostgreSQL is unreachable: {e}"))
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => {
            Error::corrupt(format!("a stored row cannot be read: {e}"))
        }
        _ => Error::backend(format!("postgres: {e}")),
    };
    err.with_operation(operation)
}

/// `?`-friendly mapping with the operation name.
pub(crate) trait SqlxResultExt<T> {
    fn op(self, operation: &'static str) -> Result<T, Error>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn op(self, operation: &'static str) -> Result<T, Error> {
        self.map_err(|e| map_sqlx_error(&e, operation))
    }
}

/// `u64` to a BIGINT parameter, saturating (counts and sequence numbers never reach it).
pub(crate) fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored BIGINT that must fit `u32` (versions, attempts).
pub(crate) fn small(v: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::corrupt(format!("stored {what} {v} is out of range")))
}

/// A stored id that must pass its validation.
pub(crate) fn stored_id<T: TryFrom<String, Error = Error>>(
    s: String,
    what: &str,
) -> Result<T, Error> {
    T::try_from(s).map_err(|e| Error::corrupt(format!("stored {what}: {e}")))
}
