//! SQLite and sqlx errors mapped to kinds. Constraint violations go by sqlx's
//! [`sqlx::error::ErrorKind`]; the rest by SQLite's named primary result codes
//! (<https://sqlite.org/rescode.html>): busy and locked are `Unavailable` and
//! retryable, a damaged file is corrupt data. The driver's error is kept as the
//! source; the message says what happened without quoting a stored value.

use sqlx::error::ErrorKind as SqlxKind;
use storage_ports::Error;

/// `SQLITE_BUSY`: another connection holds the lock past the busy timeout.
const SQLITE_BUSY: i64 = 5;
/// `SQLITE_LOCKED`: a conflict inside this connection's shared cache.
const SQLITE_LOCKED: i64 = 6;
/// `SQLITE_CORRUPT`: the database file is malformed.
const SQLITE_CORRUPT: i64 = 11;
/// `SQLITE_NOTADB`: the file is not a database.
const SQLITE_NOTADB: i64 = 26;
/// `SQLITE_FULL`: the disk is full.
const SQLITE_FULL: i64 = 13;

/// Maps a sqlx error raised by `operation`, keeping it as the source.
#[must_use]
pub fn map_sqlx_error(e: sqlx::Error, operation: &'static str) -> Error {
    let err = match &e {
        sqlx::Error::Database(db) => match db.kind() {
            SqlxKind::UniqueViolation => Error::already_exists("a row with this key exists"),
            SqlxKind::ForeignKeyViolation
            | SqlxKind::NotNullViolation
            | SqlxKind::CheckViolation
            | SqlxKind::ExclusionViolation => {
                Error::invalid_input("a constraint of the schema refused the write")
            }
            _ => {
                // Extended result codes carry the primary code in their low byte.
                let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
                match code & 0xff {
                    SQLITE_BUSY | SQLITE_LOCKED => Error::unavailable("the database is busy"),
                    SQLITE_CORRUPT | SQLITE_NOTADB => {
                        Error::corrupt("the database file is damaged")
                    }
                    SQLITE_FULL => Error::unavailable("the disk holding the database is full"),
                    _ => Error::backend(format!("sqlite reported result code {code}")),
                }
            }
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::unavailable("sqlite is unavailable")
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => Error::corrupt("a stored row cannot be read"),
        _ => Error::backend("sqlite failed"),
    };
    err.with_operation(operation).with_source(e)
}

/// `?`-friendly mapping with the operation name.
pub(crate) trait SqlxResultExt<T> {
    fn op(self, operation: &'static str) -> Result<T, Error>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn op(self, operation: &'static str) -> Result<T, Error> {
        self.map_err(|e| map_sqlx_error(e, operation))
    }
}

/// Parses a stored JSON column.
pub(crate) fn json_column(text: &str, what: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::corrupt(format!("stored {what} is not JSON: {e}")))
}
