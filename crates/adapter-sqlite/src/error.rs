//! SQLite and sqlx errors mapped to kinds: busy and locked are retryable, unique
//! violations are conflicts, undecodable rows are corrupt data.

use storage_ports::Error;

/// Maps a sqlx error raised by `operation`.
#[must_use]
pub fn map_sqlx_error(e: &sqlx::Error, operation: &'static str) -> Error {
    let err = match e {
        sqlx::Error::Database(db) => {
            // Extended result codes: 5 BUSY, 6 LOCKED (and their extensions), 1555/2067
            // primary-key/unique constraint, 787 foreign key.
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            match code & 0xff {
                5 | 6 => Error::unavailable(format!("the database is busy: {db}")),
                19 if code == 1555 || code == 2067 => {
                    Error::conflict(format!("already exists: {db}"))
                }
                19 => Error::invalid_input(format!("a constraint refused the write: {db}")),
                11 | 26 => Error::corrupt(format!("the database file is damaged: {db}")),
                _ => Error::backend(format!("sqlite: {db}")),
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::unavailable(format!("sqlite is unavailable: {e}"))
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => {
            Error::corrupt(format!("a stored row cannot be read: {e}"))
        }
        _ => Error::backend(format!("sqlite: {e}")),
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

/// Parses a stored JSON column.
pub(crate) fn json_column(text: &str, what: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::corrupt(format!("stored {what} is not JSON: {e}")))
}
