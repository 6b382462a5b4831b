//! R1 for the SQLite adapter: a writer process storing complete runs is SIGKILLed at
//! random moments, 50 times; afterwards every acknowledged run reads back whole and
//! the database opens cleanly (migrations, integrity check).

use adapter_sqlite::SqliteStore;
use serde_json::json;
use storage_ports::{
    CompleteRun, NewRun, Run, RunId, RunStore, TenantId, Timestamp, VariableSnapshot, WorkflowId,
};

const ROLE: &str = "FLOWSTORE_SQLITE_KILL_WRITER";
const TEST: &str = "r1_acknowledged_runs_survive_sigkill";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn run(i: u64) -> Result<CompleteRun, storage_ports::Error> {
    let mut run = Run::started(NewRun {
        run_id: RunId::generate(),
        workflow_id: WorkflowId::new("crash")?,
        version: 1,
        inputs: json!({"i": i}),
        started_at: Timestamp::now(),
    });
    run.apply(storage_ports::RunOutcome::succeeded(
        json!(i),
        Timestamp::now(),
    ));
    let steps = (0..5)
        .map(|s| {
            storage_ports::RunStep::Snapshot(VariableSnapshot {
                name: format!("v{s}"),
                old_value: json!(null),
                new_value: json!(s),
                at: Timestamp::now(),
            })
        })
        .collect();
    Ok(CompleteRun { run, steps })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_acknowledged_runs_survive_sigkill() -> TestResult {
    let t = TenantId::new("acme")?;
    if let Ok(dir) = std::env::var(ROLE) {
        let store = SqliteStore::open(std::path::Path::new(&dir).join("store.db")).await?;
        for i in 0_u64.. {
            let r = run(i)?;
            let id = r.run.run_id.clone();
            store.store_complete(&t, r).await?;
            storage_contract::crash::ack(id.as_str());
        }
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("flowstore-sqlite-kill-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let acked = storage_contract::crash::kill_rounds(
        TEST,
        ROLE,
        &dir,
        50,
        std::time::Duration::from_millis(30),
        std::time::Duration::from_millis(150),
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
    let store = SqliteStore::open(dir.join("store.db")).await?;
    for id in &acked {
        let r = store.get_complete(&t, &RunId::new(id.clone())?).await?;
        assert_eq!(r.steps.len(), 5, "run {id} lost steps");
    }
    let url = format!("sqlite:{}", dir.join("store.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await?;
    assert_eq!(check, "ok");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
