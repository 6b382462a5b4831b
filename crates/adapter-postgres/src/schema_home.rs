//! Where flowstore's tables live in a PostgreSQL database: in a schema of their own
//! (`flowstore` unless configured), with the migration history in
//! `<schema>._flowstore_migrations`, so that a host application running its own
//! `sqlx::migrate!()` on the same database (into `public._sqlx_migrations`) never
//! meets flowstore's history, in either order.
//!
//! Schemas 1 to 3 were written into `public` with the history in
//! `public._sqlx_migrations`. [`adopt_public_layout`] moves such a database in place,
//! once, under an advisory lock (nodes starting together move it once): every
//! `flowstore_*` table, sequence and function goes to the schema (indexes, constraints
//! and triggers go with their tables; data is not copied), and flowstore's rows of the
//! history move to the new history table. Rows flowstore does not recognise (another
//! application's) stay where they are.

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use storage_ports::adapter_kit::history::own_versions;
use storage_ports::{Error, Result};

use crate::error::SqlxResultExt;
use crate::MIGRATOR;

/// The history table's name inside the schema.
pub(crate) const HISTORY: &str = "_flowstore_migrations";

/// Checks a schema name: a plain lowercase identifier, so that it can be quoted
/// without surprises and typed in `psql` as is.
///
/// # Errors
/// `InvalidInput` naming the rule.
pub(crate) fn validate(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "postgres schema {schema:?} must be a lowercase identifier (a-z, 0-9, _; at most 63; not pg_*)"
        )))
    }
}

/// The migrator of this build with its history in `<schema>._flowstore_migrations`,
/// creating the schema first.
pub(crate) fn migrator(schema: &str) -> Migrator {
    let mut m = Migrator::with_migrations(MIGRATOR.migrations.to_vec());
    m.dangerous_set_table_name(format!("\"{schema}\".{HISTORY}"));
    m.create_schema(schema.to_owned());
    m
}

/// Moves a database of schemas 1-3 (everything in `public`) into `schema`; returns
/// whether it moved anything. A database already in the new layout, or a new one, is
/// left as it is.
///
/// # Errors
/// Backend errors; the move is one transaction, so a failure leaves the old layout.
pub(crate) async fn adopt_public_layout(pool: &PgPool, schema: &str) -> Result<bool> {
    const OP: &str = "postgres.schema";
    let mut tx = pool.begin().await.op(OP)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('flowstore: adopt public layout'))")
        .execute(&mut *tx)
        .await
        .op(OP)?;
    let (new_history, old_jobs, old_history): (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as(
            "SELECT to_regclass($1)::text, to_regclass('public.flowstore_jobs')::text, \
             to_regclass('public._sqlx_migrations')::text",
        )
        .bind(format!("\"{schema}\".{HISTORY}"))
        .fetch_one(&mut *tx)
        .await
        .op(OP)?;
    if new_history.is_some() || old_jobs.is_none() || schema == "public" {
        return Ok(false);
    }
    let q = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
    q(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut *tx)
        .await
        .op(OP)?;
    // Tables first: their indexes, constraints, triggers and owned sequences go with
    // them. Then what is left: standalone sequences and functions.
    for (kind, sql) in [
        (
            "TABLE",
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relname LIKE 'flowstore\\_%' AND relkind IN ('r', 'p')",
        ),
        (
            "SEQUENCE",
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relname LIKE 'flowstore\\_%' AND relkind = 'S'",
        ),
        (
            "FUNCTION",
            "SELECT p.oid::regprocedure::text FROM pg_proc p \
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'flowstore\\_%'",
        ),
    ] {
        let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *tx).await.op(OP)?;
        for name in names {
            let object = if kind == "FUNCTION" {
                // regprocedure text is already qualified as needed, e.g. `flowstore_notify_job()`.
                format!("public.{}", name.trim_start_matches("public."))
            } else {
                format!("public.\"{name}\"")
            };
            q(format!("ALTER {kind} {object} SET SCHEMA \"{schema}\""))
                .execute(&mut *tx)
                .await
                .op(OP)?;
        }
    }
    q(format!(
        "CREATE TABLE \"{schema}\".{HISTORY} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
    ))
    .execute(&mut *tx)
    .await
    .op(OP)?;
    if old_history.is_some() {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM public._sqlx_migrations")
                .fetch_all(&mut *tx)
                .await
                .op(OP)?;
        let ours = own_versions(
            &rows,
            MIGRATOR.iter().map(|m| (m.version, m.checksum.as_ref())),
        );
        q(format!(
            "INSERT INTO \"{schema}\".{HISTORY} \
             SELECT version, description, installed_on, success, checksum, execution_time \
             FROM public._sqlx_migrations WHERE version = ANY($1)"
        ))
        .bind(&ours)
        .execute(&mut *tx)
        .await
        .op(OP)?;
        sqlx::query("DELETE FROM public._sqlx_migrations WHERE version = ANY($1)")
            .bind(&ours)
            .execute(&mut *tx)
            .await
            .op(OP)?;
        if ours.len() == rows.len() {
            sqlx::query("DROP TABLE public._sqlx_migrations")
                .execute(&mut *tx)
                .await
                .op(OP)?;
        }
    }
    tx.commit().await.op(OP)?;
    tracing::info!(schema, "moved flowstore's tables and history out of public");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["flowstore", "fs_2", "_x"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Flow", "a-b", "a\"b", "pg_x", "1x", &"x".repeat(64)] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
