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
    sqlx::query("INSERT INTO _flowstore_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (99999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)")
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

/// A host application's own migrations, in a folder of its own, as `sqlx migrate`
/// would run them.
fn host_migrations(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let m = dir.join("host-migrations");
    std::fs::create_dir_all(&m)?;
    std::fs::write(
        m.join("0001_users.sql"),
        "CREATE TABLE app_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    )?;
    std::fs::write(
        m.join("0002_orders.sql"),
        "CREATE TABLE app_orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL);",
    )?;
    Ok(m)
}

async fn run_host(
    file: &std::path::Path,
    migrations: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}?mode=rwc", file.display())).await?;
    sqlx::migrate::Migrator::new(migrations)
        .await?
        .run(&pool)
        .await?;
    sqlx::query("INSERT INTO app_users (name) VALUES ('ana')")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

async fn flowstore_works(file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use storage_ports::{DocumentStore, Operations as _};
    let store = SqliteStore::open(file).await?;
    let status = store.schema().await?;
    assert_eq!(status.applied, status.known, "{status:?}");
    let (t, c) = (
        storage_ports::TenantId::new("acme")?,
        storage_ports::CollectionName::new("notes")?,
    );
    let id = storage_ports::DocumentId::new(storage_ports::RunId::generate().as_str())?;
    store
        .create(&t, &c, Some(id.clone()), serde_json::json!({"n": 1}))
        .await?;
    assert_eq!(
        store.get(&t, &c, &id).await?.body,
        serde_json::json!({"n": 1})
    );
    Ok(())
}

/// A host's own sqlx migrations and flowstore's share one file in both orders, and
/// both still run and work afterwards.
#[tokio::test]
async fn host_migrations_and_flowstore_share_a_file_in_both_orders(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-host-{}",
        storage_ports::RunId::generate()
    ));
    let migrations = host_migrations(&dir)?;
    for (name, host_first) in [("host-first.db", true), ("flowstore-first.db", false)] {
        let file = dir.join(name);
        if host_first {
            run_host(&file, &migrations).await?;
            flowstore_works(&file).await?;
        } else {
            flowstore_works(&file).await?;
            run_host(&file, &migrations).await?;
        }
        // Both again, in the other order: neither refuses the other's history.
        flowstore_works(&file).await?;
        run_host(&file, &migrations).await?;
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
        let host: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await?;
        assert_eq!(
            host, 2,
            "{name}: the host's history holds the host's two migrations"
        );
        let ours: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _flowstore_migrations")
            .fetch_one(&pool)
            .await?;
        assert!(ours >= 5, "{name}: flowstore's history is its own");
        pool.close().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A file written with flowstore's history in `_sqlx_migrations` (schemas 1-5) is
/// upgraded in place: the history moves, the data reads back unchanged.
#[tokio::test]
async fn a_file_with_the_old_history_is_upgraded_in_place() -> Result<(), Box<dyn std::error::Error>>
{
    use storage_ports::DocumentStore;
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-upgrade-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("old.db");
    let (t, c, id) = (
        storage_ports::TenantId::new("acme")?,
        storage_ports::CollectionName::new("notes")?,
        storage_ports::DocumentId::new("d1")?,
    );
    let store = SqliteStore::open(&file).await?;
    store
        .create(&t, &c, Some(id.clone()), serde_json::json!({"kept": true}))
        .await?;
    drop(store);
    // Put the history back where schemas 1-5 kept it.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    sqlx::query("ALTER TABLE _flowstore_migrations RENAME TO _sqlx_migrations")
        .execute(&pool)
        .await?;
    pool.close().await;

    let store = SqliteStore::open(&file).await?;
    assert_eq!(
        store.get(&t, &c, &id).await?.body,
        serde_json::json!({"kept": true})
    );
    let status = store.schema().await?;
    assert_eq!(status.applied, status.known, "{status:?}");
    drop(store);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    let old: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&pool)
    .await?;
    assert_eq!(
        old, None,
        "flowstore's rows moved and the emptied table went"
    );
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
