//! flowstore's migration history in a SQLite file: the table `_flowstore_migrations`,
//! so that a host application running its own `sqlx::migrate!()` on the same file
//! (into `_sqlx_migrations`) never meets flowstore's history, in either order.
//!
//! Schemas 1 to 5 recorded their history in `_sqlx_migrations`.
//! [`adopt_sqlx_history`] moves flowstore's rows from there, once, in one write
//! transaction; rows flowstore does not recognise (another application's) stay.

use sqlx::migrate::Migrator;
use storage_ports::adapter_kit::history::own_versions;
use storage_ports::Result;

use crate::error::SqlxResultExt;
use crate::{SqliteStore, MIGRATOR};

/// The history table.
pub(crate) const HISTORY: &str = "_flowstore_migrations";

/// The migrator of this build with its history in [`HISTORY`].
pub(crate) fn migrator() -> Migrator {
    let mut m = Migrator::with_migrations(MIGRATOR.migrations.to_vec());
    m.dangerous_set_table_name(HISTORY);
    m
}

/// Moves flowstore's rows of `_sqlx_migrations` to [`HISTORY`]; returns whether it
/// moved any. A file already in the new layout, or a new one, is left as it is.
///
/// # Errors
/// Backend errors; the move is one transaction.
pub(crate) async fn adopt_sqlx_history(store: &SqliteStore) -> Result<bool> {
    const OP: &str = "sqlite.schema";
    let _gate = store.write_gate().await;
    let mut tx = store.write_tx().await.op(OP)?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name IN ('_flowstore_migrations', '_sqlx_migrations')",
    )
    .fetch_all(&mut *tx)
    .await
    .op(OP)?;
    if tables.iter().any(|t| t == HISTORY) || !tables.iter().any(|t| t == "_sqlx_migrations") {
        return Ok(false);
    }
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations")
            .fetch_all(&mut *tx)
            .await
            .op(OP)?;
    let ours = own_versions(
        &rows,
        MIGRATOR.iter().map(|m| (m.version, m.checksum.as_ref())),
    );
    if ours.is_empty() {
        return Ok(false);
    }
    sqlx::query(
        "CREATE TABLE _flowstore_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .op(OP)?;
    for v in &ours {
        sqlx::query(
            "INSERT INTO _flowstore_migrations \
             SELECT version, description, installed_on, success, checksum, execution_time \
             FROM _sqlx_migrations WHERE version = ?",
        )
        .bind(v)
        .execute(&mut *tx)
        .await
        .op(OP)?;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?")
            .bind(v)
            .execute(&mut *tx)
            .await
            .op(OP)?;
    }
    if ours.len() == rows.len() {
        sqlx::query("DROP TABLE _sqlx_migrations")
            .execute(&mut *tx)
            .await
            .op(OP)?;
    }
    tx.commit().await.op(OP)?;
    Ok(true)
}
