//! The data directory records its format: a new directory gets `flowstore-format`
//! (format 2), one of format 1 (or written before the file existed) is upgraded on open
//! with its runs indexed, and one written by a newer flowstore is refused with both
//! numbers, before anything is read or written.

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{
    ErrorKind, NewRun, NewWorkflowVersion, Operations, RunId, RunQuery, TenantId, Timestamp,
    WorkflowId,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn temp_root(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "flowstore-fs-{name}-{}",
        storage_ports::RunId::generate()
    ))
}

async fn queried(store: &FsStore, t: &TenantId) -> Result<usize, storage_ports::Error> {
    let page = storage_ports::RunStore::query(
        store,
        t,
        RunQuery {
            limit: 100,
            ..RunQuery::default()
        },
    )
    .await?;
    Ok(page.items.len())
}

#[tokio::test]
async fn the_data_format_is_recorded_upgraded_and_a_newer_one_refused() -> TestResult {
    let root = temp_root("format");
    let t = TenantId::new("acme")?;
    let store = FsStore::open(&root)?;
    assert_eq!(
        std::fs::read_to_string(root.join("flowstore-format"))?,
        "2\n"
    );
    let s = store.schema().await?;
    assert_eq!((s.applied, s.known), (2, 2));
    let set = store.store_set();
    set.workflows
        .put(
            &t,
            NewWorkflowVersion::next(WorkflowId::new("etl")?, json!({"n": 1})),
        )
        .await?;
    for _ in 0..3 {
        set.runs
            .start(
                &t,
                NewRun {
                    run_id: RunId::generate(),
                    workflow_id: WorkflowId::new("etl")?,
                    version: 1,
                    inputs: json!({}),
                    started_at: Timestamp::now(),
                },
            )
            .await?;
    }
    drop((set, store));

    // A format 1 directory, as an older flowstore wrote it (no run index), and one
    // written before the file existed: both upgraded, data intact, runs queryable.
    for old in [Some("1\n"), None] {
        std::fs::remove_dir_all(root.join("acme/run-index"))?;
        match old {
            Some(text) => std::fs::write(root.join("flowstore-format"), text)?,
            None => std::fs::remove_file(root.join("flowstore-format"))?,
        }
        let store = FsStore::open(&root)?;
        assert_eq!(store.schema().await?.applied, 2);
        assert_eq!(
            std::fs::read_to_string(root.join("flowstore-format"))?,
            "2\n"
        );
        assert_eq!(queried(&store, &t).await?, 3, "every run indexed again");
        store
            .store_set()
            .workflows
            .get(&t, &WorkflowId::new("etl")?, 1)
            .await?;
    }

    // A newer flowstore's directory.
    std::fs::write(root.join("flowstore-format"), "3\n")?;
    let e = FsStore::open(&root)
        .err()
        .ok_or("a newer format was opened")?;
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let text = e.to_string();
    assert!(
        text.contains("data format 3") && text.contains("up to 2"),
        "{text}"
    );

    // Not a number: corrupt data naming the file.
    std::fs::write(root.join("flowstore-format"), "one\n")?;
    let e = FsStore::open(&root)
        .err()
        .ok_or("a damaged format file was opened")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(e.to_string().contains("flowstore-format"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// E5 on files: a query opens the heads of the page it returns, not every run of the
/// tenant. The heads of the older runs are made unreadable (a directory where the file
/// should be, which fails any read): a query for the newest page never meets them.
#[tokio::test]
async fn e5_a_query_opens_only_the_runs_of_its_page() -> TestResult {
    let root = temp_root("query-opens");
    let t = TenantId::new("acme")?;
    let store = FsStore::open(&root)?;
    let set = store.store_set();
    let base = Timestamp::now().as_micros();
    let mut ids = Vec::new();
    for n in 0..30_i64 {
        let run_id = RunId::generate();
        set.runs
            .start(
                &t,
                NewRun {
                    run_id: run_id.clone(),
                    workflow_id: WorkflowId::new(if n % 2 == 0 { "even" } else { "odd" })?,
                    version: 1,
                    inputs: json!({"n": n}),
                    started_at: Timestamp::from_micros(base + n),
                },
            )
            .await?;
        ids.push(run_id);
    }
    // The page of 5 reads one more head, to know that more follow: run 19.
    for id in &ids[..18] {
        let head = root.join(format!("acme/runs/{id}/run.json"));
        std::fs::remove_file(&head)?;
        std::fs::create_dir(&head)?;
    }
    let page = storage_ports::RunStore::query(
        &store,
        &t,
        RunQuery {
            limit: 5,
            workflow_id: Some(WorkflowId::new("odd")?),
            ..RunQuery::default()
        },
    )
    .await?;
    let got: Vec<&RunId> = page.items.iter().map(|r| &r.run_id).collect();
    let want: Vec<&RunId> = [29, 27, 25, 23, 21].iter().map(|n| &ids[*n]).collect();
    assert_eq!(got, want, "the newest five odd runs, newest first");
    assert!(page.next.is_some());
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
