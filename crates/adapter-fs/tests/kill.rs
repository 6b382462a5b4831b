//! R1 for the file adapter: writer processes storing workflow versions, and run logs
//! step by step, are SIGKILLed at random moments, 50 times each; afterwards every
//! acknowledged write reads back intact, listings skip nothing that was acknowledged,
//! and the store opens and takes writes cleanly.

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{
    NewRun, NewWorkflowVersion, RunId, RunOutcome, RunQuery, RunStatus, RunStep, RunStore,
    TenantId, Timestamp, VariableSnapshot, WorkflowId, WorkflowStore,
};

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
        WorkflowStore::get(&store, &t, &wf, v).await?;
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

const RUN_ROLE: &str = "FLOWSTORE_FS_KILL_RUN_WRITER";
const RUN_TEST: &str = "r1_acknowledged_run_steps_survive_sigkill";

fn snapshot(k: u64) -> RunStep {
    RunStep::Snapshot(VariableSnapshot {
        name: format!("v{k}"),
        old_value: json!(null),
        new_value: json!({"k": k, "pad": "y".repeat(256)}),
        at: Timestamp::now(),
    })
}

/// R1 for run logs, step by step: start, five appends, finish, each acknowledged as
/// it returns. A kill in the middle of an append leaves a torn line; afterwards every
/// acknowledged step is there in order, every acknowledged finish holds, and a run
/// left running still accepts its next append at the right sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_acknowledged_run_steps_survive_sigkill() -> TestResult {
    let t = TenantId::new("acme")?;
    if let Ok(root) = std::env::var(RUN_ROLE) {
        let store = FsStore::open(root)?;
        loop {
            let id = RunId::generate();
            store
                .start(
                    &t,
                    NewRun {
                        run_id: id.clone(),
                        workflow_id: WorkflowId::new("crash")?,
                        version: 1,
                        inputs: json!({}),
                        started_at: Timestamp::now(),
                    },
                )
                .await?;
            storage_contract::crash::ack(&format!("start {id}"));
            for k in 0..5 {
                let seq = store.append(&t, &id, snapshot(k)).await?;
                storage_contract::crash::ack(&format!("step {id} {seq} {k}"));
            }
            store
                .finish(&t, &id, RunOutcome::succeeded(json!(1), Timestamp::now()))
                .await?;
            storage_contract::crash::ack(&format!("finish {id}"));
        }
    }
    let root = std::env::temp_dir().join(format!("flowstore-fs-kill-runs-{}", RunId::generate()));
    std::fs::create_dir_all(&root)?;
    let acked = storage_contract::crash::kill_rounds(
        RUN_TEST,
        RUN_ROLE,
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
    let store = FsStore::open(&root)?;
    let mut started = std::collections::BTreeSet::new();
    for ack in &acked {
        let words: Vec<&str> = ack.split(' ').collect();
        let id = RunId::new(words.get(1).copied().unwrap_or_default())?;
        let run = store.get_complete(&t, &id).await?;
        match words.first().copied() {
            Some("start") => {
                started.insert(id);
            }
            Some("step") => {
                let seq: usize = words.get(2).copied().unwrap_or_default().parse()?;
                let k: u64 = words.get(3).copied().unwrap_or_default().parse()?;
                let Some(RunStep::Snapshot(s)) = run.steps.get(seq - 2) else {
                    panic!("run {id}: acknowledged step {seq} is missing");
                };
                assert_eq!(s.new_value["k"], json!(k), "run {id}: step {seq} differs");
            }
            Some("finish") => assert_eq!(run.run.status, RunStatus::Succeeded),
            other => panic!("unexpected acknowledgement {other:?}"),
        }
    }
    // Every started run is listed; a run cut off while running takes its next append
    // right after its last whole step.
    let listed = store
        .query(
            &t,
            RunQuery {
                limit: 1_000,
                ..RunQuery::default()
            },
        )
        .await?;
    for id in &started {
        assert!(
            listed.items.iter().any(|r| r.run_id == *id),
            "run {id} is not listed"
        );
        let run = store.get_complete(&t, id).await?;
        if run.run.status == RunStatus::Running {
            let seq = store.append(&t, id, snapshot(99)).await?;
            assert_eq!(seq, run.steps.len() as u64 + 2, "run {id}: wrong next seq");
        }
    }
    eprintln!(
        "{} writes acknowledged on {} runs across 50 SIGKILLed writers; all checked",
        acked.len(),
        started.len()
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
