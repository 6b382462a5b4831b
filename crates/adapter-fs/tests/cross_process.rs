//! W4 across processes: several OS processes storing new versions of one workflow in
//! one directory all succeed with distinct versions, none lost. The test binary runs
//! itself as the writer processes (selected by an environment variable).

use std::collections::BTreeSet;
use std::process::Command;

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{NewWorkflowVersion, TenantId, WorkflowId};

const ROOT_VAR: &str = "FLOWSTORE_FS_WRITER_ROOT";
const WRITERS: usize = 4;
const PER_WRITER: usize = 100;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// In a writer process: store PER_WRITER versions and print each acknowledged one.
async fn write_versions(root: &str) -> TestResult {
    // Start together, so that the processes really contend for the lock.
    let go = std::path::Path::new(root).join("go");
    while !go.exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let set = FsStore::open(root)?.store_set();
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("shared")?);
    for i in 0..PER_WRITER {
        let v = set
            .workflows
            .put(
                &t,
                NewWorkflowVersion::next(wf.clone(), json!({"pid": std::process::id(), "i": i})),
            )
            .await?;
        println!("acked {}", v.meta.version);
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
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..WRITERS {
        children.push(
            Command::new(&exe)
                .args([
                    "--exact",
                    "w4_writers_in_separate_processes_get_distinct_versions",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(ROOT_VAR, &root)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()?,
        );
    }
    std::fs::write(root.join("go"), b"")?;
    let mut acked = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a writer failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest may print its own text on the same line as the first ack.
        acked.extend(
            stdout
                .lines()
                .filter_map(|l| l.split_once("acked "))
                .filter_map(|(_, v)| v.trim().parse::<u32>().ok()),
        );
    }
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
