//! flowstore's schema beside a host's on one PostgreSQL database: its tables and its
//! migration history live in the schema `flowstore`, so a host's own sqlx migrations
//! (into `public._sqlx_migrations`) and flowstore's run in either order; a database of
//! schemas 1-3 (everything in `public`) is moved in place and its data reads back.

use adapter_postgres::{Config, PostgresStore};
use serde_json::json;
use sqlx::{Executor, PgPool};
use storage_contract::servers::server_env;
use storage_ports::{
    CollectionName, DocumentId, DocumentStore, Operations, TenantId, WorkflowId, WorkflowStore,
};

/// A fresh database on the test server; returns its URL.
async fn fresh_database(label: &str) -> Result<String, Box<dyn std::error::Error>> {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let name = format!("{label}_{}", storage_ports::RunId::generate().as_str());
    let admin = PgPool::connect(&url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await?;
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// A host application's own migrations, as `sqlx migrate` would run them.
fn host_migrations() -> std::io::Result<std::path::PathBuf> {
    let m = std::env::temp_dir().join(format!(
        "flowstore-pg-host-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&m)?;
    std::fs::write(
        m.join("0001_users.sql"),
        "CREATE TABLE app_users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);",
    )?;
    std::fs::write(
        m.join("0002_orders.sql"),
        "CREATE TABLE app_orders (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL);",
    )?;
    Ok(m)
}

async fn run_host(
    url: &str,
    migrations: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = PgPool::connect(url).await?;
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

async fn flowstore_works(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = PostgresStore::connect(&Config::new(url)).await?;
    let status = store.schema().await?;
    assert_eq!(status.applied, status.known, "{status:?}");
    let (t, c) = (TenantId::new("acme")?, CollectionName::new("notes")?);
    let id = DocumentId::new(storage_ports::RunId::generate().as_str())?;
    store
        .create(&t, &c, Some(id.clone()), json!({"n": 1}))
        .await?;
    assert_eq!(
        DocumentStore::get(&store, &t, &c, &id).await?.body,
        json!({"n": 1})
    );
    Ok(())
}

#[tokio::test]
async fn host_migrations_and_flowstore_share_a_database_in_both_orders(
) -> Result<(), Box<dyn std::error::Error>> {
    let migrations = host_migrations()?;
    for host_first in [true, false] {
        let url = fresh_database(if host_first {
            "host_first"
        } else {
            "flowstore_first"
        })
        .await?;
        if host_first {
            run_host(&url, &migrations).await?;
            flowstore_works(&url).await?;
        } else {
            flowstore_works(&url).await?;
            run_host(&url, &migrations).await?;
        }
        flowstore_works(&url).await?;
        run_host(&url, &migrations).await?;
        let pool = PgPool::connect(&url).await?;
        let host: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM public._sqlx_migrations")
            .fetch_one(&pool)
            .await?;
        assert_eq!(
            host, 2,
            "the host's history holds the host's two migrations"
        );
        let ours: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flowstore._flowstore_migrations")
            .fetch_one(&pool)
            .await?;
        assert!(ours >= 3, "flowstore's history is its own");
        let stray: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'flowstore%'",
        )
        .fetch_one(&pool)
        .await?;
        assert_eq!(stray, 0, "no flowstore table in public");
        pool.close().await;
    }
    let _ = std::fs::remove_dir_all(&migrations);
    Ok(())
}

#[tokio::test]
async fn a_database_of_the_public_layout_is_upgraded_in_place(
) -> Result<(), Box<dyn std::error::Error>> {
    let url = fresh_database("public_layout").await?;
    // Write the layout of schemas 1-3: flowstore in `public`, its history in
    // `public._sqlx_migrations`, and data in it.
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("etl")?);
    let (c, id) = (CollectionName::new("notes")?, DocumentId::new("d1")?);
    let stored = {
        let store =
            PostgresStore::connect(&Config::new(url.as_str()).with_schema("public")).await?;
        let v = store
            .put(
                &t,
                storage_ports::NewWorkflowVersion::next(wf.clone(), json!({"steps": [1, 2]})),
            )
            .await?;
        store
            .create(&t, &c, Some(id.clone()), json!({"kept": true}))
            .await?;
        v
    };
    let pool = PgPool::connect(&url).await?;
    pool.execute("ALTER TABLE public._flowstore_migrations RENAME TO _sqlx_migrations")
        .await?;
    pool.close().await;

    let store = PostgresStore::connect(&Config::new(url.as_str())).await?;
    assert_eq!(
        WorkflowStore::get(&store, &t, &wf, 1).await?,
        stored,
        "the workflow reads back unchanged"
    );
    assert_eq!(
        DocumentStore::get(&store, &t, &c, &id).await?.body,
        json!({"kept": true})
    );
    let status = store.schema().await?;
    assert_eq!(status.applied, status.known, "{status:?}");
    let pool = PgPool::connect(&url).await?;
    let (old, public_tables): (Option<String>, i64) = sqlx::query_as(
        "SELECT to_regclass('public._sqlx_migrations')::text, \
         (SELECT COUNT(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'flowstore%')",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        old, None,
        "flowstore's rows moved and the emptied table went"
    );
    assert_eq!(
        public_tables, 0,
        "every flowstore object moved to its schema"
    );
    pool.close().await;
    // Opening again changes nothing.
    let again = PostgresStore::connect(&Config::new(url.as_str())).await?;
    assert_eq!(WorkflowStore::get(&again, &t, &wf, 1).await?, stored);
    Ok(())
}
