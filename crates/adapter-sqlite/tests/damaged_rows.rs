//! Rows changed behind flowstore's back (a hand-run UPDATE, a bad restore): what the
//! adapter reads from them is corrupt data, never a hang or a panic.

use adapter_sqlite::SqliteStore;
use serde_json::json;
use storage_ports::{ErrorKind, NewWorkflowVersion, TenantId, WorkflowId, WorkflowStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// W5: a parent changed to the row's own version would loop the recursive walk; the
/// walk follows only older parents and ends with a corrupt-data error.
#[tokio::test]
async fn w5_a_parent_changed_into_a_loop_is_corrupt_data() -> TestResult {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-loop-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("flowstore.db");
    let store = SqliteStore::open(&file).await?;
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("etl")?);
    store
        .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 1})))
        .await?;
    store
        .put(
            &t,
            NewWorkflowVersion::next(wf.clone(), json!({"n": 2})).with_parent(1),
        )
        .await?;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    sqlx::query("UPDATE flowstore_workflow_versions SET parent = 2 WHERE version = 2")
        .execute(&pool)
        .await?;
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.lineage(&t, &wf, 2),
    )
    .await
    .map_err(|_| "lineage of a looped row did not end")?
    .err()
    .ok_or("a looped lineage was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    assert!(e.to_string().contains("parent 2"), "{e}");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
