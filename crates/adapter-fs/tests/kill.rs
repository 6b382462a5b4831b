//! R1 for the file adapter: a writer process storing workflow versions is SIGKILLed at
//! random moments, 50 times; afterwards every acknowledged version reads back intact,
//! listings skip nothing that was acknowledged, and the store opens cleanly.

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{NewWorkflowVersion, TenantId, WorkflowId, WorkflowStore};

const ROLE: &str = "FLOWSTORE_FS_KILL_WRITER";
const TEST: &str = "r1_acknowledged_versions_survive_sigkill";

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_acknowledged_versions_survive_sigkill() -> TestResult {
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("crash")?);
    if let Ok(root) = std::env::var(ROLE) {
        // Writer: store versions until killed.
        let store = FsStore::open(root)?;
        for i in 0_u64.. {
            let v = store
                .put(
                    &t,
                    NewWorkflowVersion::next(wf.clone(), json!({"i": i, "pad": "x".repeat(512)})),
                )
                .await?;
            storage_contract::crash::ack(&v.meta.version.to_string());
        }
        return Ok(());
    }
    let root = std::env::temp_dir().join(format!(
        "flowstore-fs-kill-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&root)?;
    let acked = storage_contract::crash::kill_rounds(
        TEST,
        ROLE,
        &root,
        50,
        std::time::Duration::from_millis(20),
        std::time::Duration::from_millis(120),
    )?;
    assert!(
        acked.len() >= 50,
        "only {} writes were acknowledged in 50 rounds",
        acked.len()
    );
    eprintln!(
        "{} writes acknowledged across 50 SIGKILLed writers; all checked",
        acked.len()
    );
    let store = FsStore::open(&root)?;
    let stored: std::collections::BTreeSet<u32> = store
        .versions(&t, &wf)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    for id in &acked {
        let v: u32 = id.parse()?;
        assert!(
            stored.contains(&v),
            "acknowledged version {v} is missing after the kills"
        );
        store.get(&t, &wf, v).await?;
    }
    // No temp file may be mistaken for a version, and the next version is fresh.
    let next = store
        .put(
            &t,
            NewWorkflowVersion::next(wf.clone(), json!({"after": true})),
        )
        .await?;
    assert!(stored.iter().all(|v| *v < next.meta.version));
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
