//! O3 on a real file: migrations are recorded, reopening is idempotent, and a database
//! written by a newer schema is refused with a clear error.

use adapter_sqlite::SqliteStore;
use storage_ports::{ErrorKind, Operations};

#[tokio::test]
async fn o3_reopen_is_idempotent_and_a_newer_schema_is_refused(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-schema-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("store.db");
    let first = SqliteStore::open(&file).await?;
    let status = first.schema().await?;
    assert!(
        status.applied >= 1 && status.applied == status.known,
        "{status:?}"
    );
    drop(first);
    let again = SqliteStore::open(&file).await?;
    assert_eq!(
        again.schema().await?,
        status,
        "reopening changed the schema state"
    );
    drop(again);

    // Simulate a newer flowstore: a migration this build does not know.
    let url = format!("sqlite:{}", file.display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (99999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)")
        .execute(&pool)
        .await?;
    pool.close().await;
    let refused = SqliteStore::open(&file)
        .await
        .err()
        .ok_or("a newer database was opened")?;
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("newer flowstore"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
