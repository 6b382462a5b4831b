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

/// W10 for runs: a run whose stored inputs are no longer JSON is skipped by queries,
/// which still list the rest of the tenant; reading it by id is corrupt data.
#[tokio::test]
async fn w10_a_damaged_run_is_skipped_by_queries_and_corrupt_when_read() -> TestResult {
    use storage_ports::{RunQuery, RunStore};
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-damaged-run-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("flowstore.db");
    let store = SqliteStore::open(&file).await?;
    let t = TenantId::new("acme")?;
    let mut ids = Vec::new();
    for wf in ["a", "b", "c"] {
        let run = storage_ports::NewRun {
            run_id: storage_ports::RunId::generate(),
            workflow_id: WorkflowId::new(wf)?,
            version: 1,
            inputs: json!({"wf": wf}),
            started_at: storage_ports::Timestamp::now(),
        };
        ids.push(run.run_id.clone());
        store.start(&t, run).await?;
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    sqlx::query("UPDATE flowstore_runs SET inputs = 'not json {' WHERE run_id = ?")
        .bind(ids[1].as_str())
        .execute(&pool)
        .await?;
    let page = store
        .query(
            &t,
            RunQuery {
                limit: 10,
                ..RunQuery::default()
            },
        )
        .await?;
    let mut listed: Vec<_> = page.items.iter().map(|r| r.run_id.clone()).collect();
    listed.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(listed, want, "the readable runs");
    let e = RunStore::get(&store, &t, &ids[1])
        .await
        .err()
        .ok_or("the damaged run was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// W10 for documents: a document whose stored body is no longer JSON is skipped by
/// listings, which still page through the rest; reading it by id is corrupt data.
#[tokio::test]
async fn w10_a_damaged_document_is_skipped_by_listings_and_corrupt_when_read() -> TestResult {
    use storage_ports::{CollectionName, DocumentFilter, DocumentId, DocumentStore, PageRequest};
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-damaged-doc-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("flowstore.db");
    let store = SqliteStore::open(&file).await?;
    let (t, c) = (TenantId::new("acme")?, CollectionName::new("items")?);
    for n in 0..5 {
        store
            .create(
                &t,
                &c,
                Some(DocumentId::new(format!("d{n}"))?),
                json!({"n": n}),
            )
            .await?;
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    sqlx::query("UPDATE flowstore_documents SET body = 'not json {' WHERE id = 'd2'")
        .execute(&pool)
        .await?;
    let (mut seen, mut page) = (Vec::new(), PageRequest::first(2));
    loop {
        let p = DocumentStore::list(&store, &t, &c, &DocumentFilter::all(), page).await?;
        seen.extend(p.items.into_iter().map(|d| d.id.to_string()));
        match p.next {
            Some(n) => page = PageRequest::after(2, n),
            None => break,
        }
    }
    assert_eq!(seen, ["d0", "d1", "d3", "d4"], "the readable documents");
    let e = DocumentStore::get(&store, &t, &c, &DocumentId::new("d2")?)
        .await
        .err()
        .ok_or("the damaged document was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
