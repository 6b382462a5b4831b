//! W4 across processes: several OS processes storing new versions of one workflow in
//! one directory all succeed with distinct versions, none lost. The test binary runs
//! itself as the writer processes (selected by an environment variable).

use std::collections::BTreeSet;

use adapter_fs::FsStore;
use serde_json::json;
use storage_contract::crash::{ack, run_writers, wait_for_start};
use storage_ports::{NewWorkflowVersion, TenantId, WorkflowId};

const ROOT_VAR: &str = "FLOWSTORE_FS_WRITER_ROOT";
const TEST: &str = "w4_writers_in_separate_processes_get_distinct_versions";
const WRITERS: usize = 4;
const PER_WRITER: usize = 100;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// In a writer process: store PER_WRITER versions and acknowledge each one.
async fn write_versions(root: &str) -> TestResult {
    wait_for_start(std::path::Path::new(root));
    let set = FsStore::open(root)?.store_set();
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("shared")?);
    for i in 0..PER_WRITER {
        let new = NewWorkflowVersion::next(wf.clone(), json!({"pid": std::process::id(), "i": i}));
        ack(&set.workflows.put(&t, new).await?.meta.version.to_string());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w4_writers_in_separate_processes_get_distinct_versions() -> TestResult {
    if let Ok(root) = std::env::var(ROOT_VAR) {
        return write_versions(&root).await;
    }
    let root = std::env::temp_dir().join(format!(
        "flowstore-fs-w4-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&root)?;
    let acked: Vec<u32> = run_writers(TEST, ROOT_VAR, &root, WRITERS)?
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let distinct: BTreeSet<u32> = acked.iter().copied().collect();
    assert_eq!(acked.len(), WRITERS * PER_WRITER, "acknowledged writes");
    assert_eq!(
        distinct.len(),
        acked.len(),
        "two processes got the same version"
    );
    let set = FsStore::open(&root)?.store_set();
    let stored: BTreeSet<u32> = set
        .workflows
        .versions(&TenantId::new("acme")?, &WorkflowId::new("shared")?)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(stored, distinct, "every acknowledged version is stored");
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
