//! PostgreSQL and sqlx errors mapped to kinds. Constraint violations go by sqlx's
//! [`sqlx::error::ErrorKind`]; the rest by SQLSTATE class: lost connections, lock
//! timeouts and shutdowns are `Unavailable`; serialization failures and deadlocks are
//! backend errors marked temporary (the same call may pass when repeated); bad values
//! are invalid input; damaged pages and undecodable rows are corrupt data. The
//! driver's error is kept as the source.

use sqlx::error::ErrorKind as SqlxKind;
use storage_ports::Error;

/// Maps a sqlx error raised by `operation`, keeping it as the source.
#[must_use]
pub fn map_sqlx_error(e: sqlx::Error, operation: &'static str) -> Error {
    let err = match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match (db.kind(), code.as_str()) {
                (SqlxKind::UniqueViolation, _) => {
                    Error::already_exists("a row with this key exists")
                }
                (
                    SqlxKind::ForeignKeyViolation
                    | SqlxKind::NotNullViolation
                    | SqlxKind::CheckViolation
                    | SqlxKind::ExclusionViolation,
                    _,
                ) => Error::invalid_input("a constraint of the schema refused the write"),
                // NUL characters, which PostgreSQL text and JSONB cannot hold.
                (_, "22P05" | "22021") => Error::invalid_input(
                    "PostgreSQL cannot store this value (it holds a NUL character or invalid text)",
                ),
                (_, c) if c.starts_with("22") || c.starts_with("23") => {
                    Error::invalid_input(format!("PostgreSQL refused the value (SQLSTATE {c})"))
                }
                // 40001 serialization failure, 40P01 deadlock: the transaction lost a
                // race and may win when repeated.
                (_, c) if c.starts_with("40") => {
                    Error::backend(format!("PostgreSQL aborted the transaction (SQLSTATE {c})"))
                        .temporary()
                }
                // 55P03 lock not available, 57P0x shutdown and cannot-connect-now, 53xxx
                // out of resources, 08xxx connection exceptions.
                (_, c)
                    if c == "55P03"
                        || c.starts_with("57P")
                        || c.starts_with("53")
                        || c.starts_with("08") =>
                {
                    Error::unavailable(format!("PostgreSQL asks to retry (SQLSTATE {c})"))
                }
                (_, "XX001" | "XX002") => {
                    Error::corrupt(format!("PostgreSQL reports damaged data (SQLSTATE {code})"))
                }
                (_, c) => Error::backend(format!("PostgreSQL failed (SQLSTATE {c})")),
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Error::unavailable("PostgreSQL is unreachable"),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => Error::corrupt("a stored row cannot be read"),
        _ => Error::backend("PostgreSQL failed"),
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
