//! The data directory records its format: a new directory gets `flowstore-format`
//! (format 1), one written before the file existed is adopted as format 1, and one
//! written by a newer flowstore is refused with both numbers, before anything is read
//! or written.

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{ErrorKind, NewWorkflowVersion, Operations, TenantId, WorkflowId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn temp_root(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "flowstore-fs-{name}-{}",
        storage_ports::RunId::generate()
    ))
}

#[tokio::test]
async fn the_data_format_is_recorded_and_a_newer_one_refused() -> TestResult {
    let root = temp_root("format");
    let store = FsStore::open(&root)?;
    assert_eq!(
        std::fs::read_to_string(root.join("flowstore-format"))?,
        "1\n"
    );
    let s = store.schema().await?;
    assert_eq!((s.applied, s.known), (1, 1));
    store
        .store_set()
        .workflows
        .put(
            &TenantId::new("acme")?,
            NewWorkflowVersion::next(WorkflowId::new("etl")?, json!({"n": 1})),
        )
        .await?;
    drop(store);

    // Written before the file existed: adopted as format 1, data intact.
    std::fs::remove_file(root.join("flowstore-format"))?;
    let store = FsStore::open(&root)?;
    assert_eq!(store.schema().await?.applied, 1);
    store
        .store_set()
        .workflows
        .get(&TenantId::new("acme")?, &WorkflowId::new("etl")?, 1)
        .await?;
    drop(store);

    // A newer flowstore's directory.
    std::fs::write(root.join("flowstore-format"), "2\n")?;
    let e = FsStore::open(&root)
        .err()
        .ok_or("a newer format was opened")?;
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let text = e.to_string();
    assert!(
        text.contains("data format 2") && text.contains("up to 1"),
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
