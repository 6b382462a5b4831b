//! Two or more processes on one database file: W4 holds across processes (distinct
//! versions, none lost) and no `SQLITE_BUSY` reaches a caller while they contend (each
//! writer also stores runs and works the queue; any error fails the writer).

use std::collections::BTreeSet;
use std::time::Duration;
use storage_ports::JobQueueExt as _;

use adapter_sqlite::SqliteStore;
use serde_json::json;
use storage_contract::crash::{ack, run_writers, wait_for_start};
use storage_ports::{
    Dequeue, JobQueue, NewJob, NewRun, NewWorkflowVersion, QueueName, RunId, RunStore, TenantId,
    Timestamp, WorkflowId, WorkflowStore,
};

const ROLE: &str = "FLOWSTORE_SQLITE_WRITER_DIR";
const TEST: &str = "w4_processes_sharing_one_file_get_distinct_versions_and_no_busy_errors";
const WRITERS: usize = 4;
const PER_WRITER: usize = 100;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn writer(dir: &str) -> TestResult {
    let dir = std::path::Path::new(dir);
    wait_for_start(dir);
    let store = SqliteStore::open(dir.join("shared.db")).await?;
    let (t, wf, q) = (
        TenantId::new("acme")?,
        WorkflowId::new("shared")?,
        QueueName::new("q")?,
    );
    for i in 0..PER_WRITER {
        let v = store
            .put(
                &t,
                NewWorkflowVersion::next(wf.clone(), json!({"pid": std::process::id(), "i": i})),
            )
            .await?;
        store
            .start(
                &t,
                NewRun {
                    run_id: RunId::generate(),
                    workflow_id: wf.clone(),
                    version: v.meta.version,
                    inputs: json!(i),
                    started_at: Timestamp::now(),
                },
            )
            .await?;
        store.enqueue(&t, &q, NewJob::new(json!(i))).await?;
        for j in store
            .dequeue(&t, &q, Dequeue::batch(2, Duration::from_secs(60)))
            .await?
        {
            store.ack(&t, &j.lease).await?;
        }
        ack(&v.meta.version.to_string());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w4_processes_sharing_one_file_get_distinct_versions_and_no_busy_errors() -> TestResult {
    if let Ok(dir) = std::env::var(ROLE) {
        return writer(&dir).await;
    }
    let dir = std::env::temp_dir().join(format!("flowstore-sqlite-procs-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    // Create the schema once, so the writers contend on data, not on migrations.
    drop(SqliteStore::open(dir.join("shared.db")).await?);
    // A writer that saw an error (such as SQLITE_BUSY) fails, and so does this.
    let acked: Vec<u32> = run_writers(TEST, ROLE, &dir, WRITERS)?
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
    let store = SqliteStore::open(dir.join("shared.db")).await?;
    let stored: BTreeSet<u32> = store
        .versions(&TenantId::new("acme")?, &WorkflowId::new("shared")?)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(stored, distinct);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
