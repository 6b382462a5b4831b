//! P1's group commit on PostgreSQL: concurrent starts, appends and finishes share
//! transactions, yet each caller gets its own answer, sees its write once it
//! returns, and a write refused for its own reason (a finished run, a taken id)
//! fails alone while the writes batched with it are stored.

use std::sync::Arc;

use adapter_postgres::{Config, PostgresStore};
use serde_json::json;
use storage_contract::servers::server_env;
use storage_ports::{
    ErrorKind, NewRun, RunId, RunOutcome, RunStep, RunStore, TenantId, Timestamp, VariableSnapshot,
    WorkflowId,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn new_run(id: &RunId) -> Result<NewRun, storage_ports::Error> {
    Ok(NewRun {
        run_id: id.clone(),
        workflow_id: WorkflowId::new("wf")?,
        version: 1,
        inputs: json!({}),
        started_at: Timestamp::now(),
    })
}

fn step(i: usize) -> RunStep {
    RunStep::Snapshot(VariableSnapshot {
        name: format!("v{i}"),
        old_value: json!(i),
        new_value: json!(i + 1),
        at: Timestamp::now(),
    })
}

const WRITERS: usize = 8;
const STEPS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_writes_answer_each_caller_alone() -> TestResult {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let store = Arc::new(PostgresStore::connect(&Config::new(url)).await?);
    let t = TenantId::new(format!("gc{}", RunId::generate()))?;
    let done = RunId::new("done")?;
    store.start(&t, new_run(&done)?).await?;
    store
        .finish(&t, &done, RunOutcome::succeeded(json!(1), Timestamp::now()))
        .await?;

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, t, done) = (store.clone(), t.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let id = RunId::new(format!("run-{w}"))?;
            store.start(&t, new_run(&id)?).await?;
            for i in 0..STEPS {
                let seq = store.append(&t, &id, step(i)).await?;
                assert_eq!(seq, i as u64 + 2, "writer {w}: its own sequence number");
                // Visible as soon as the call returns.
                let seen = store.events(&t, &id, seq).await?;
                assert_eq!(
                    seen.first().map(|e| e.seq),
                    Some(seq),
                    "writer {w} step {i}"
                );
                if i % 10 == 0 {
                    // Refused alone, in the middle of everyone's batches.
                    let late = store.append(&t, &done, step(i)).await;
                    assert_eq!(late.err().map(|e| e.kind()), Some(ErrorKind::Immutable));
                    let taken = store.start(&t, new_run(&done)?).await;
                    assert_eq!(
                        taken.err().map(|e| e.kind()),
                        Some(ErrorKind::AlreadyExists)
                    );
                }
            }
            let run = store
                .finish(&t, &id, RunOutcome::succeeded(json!(w), Timestamp::now()))
                .await?;
            assert_eq!(run.output, Some(json!(w)));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    for w in 0..WRITERS {
        let id = RunId::new(format!("run-{w}"))?;
        let seqs: Vec<u64> = store
            .events(&t, &id, 1)
            .await?
            .iter()
            .map(|e| e.seq)
            .collect();
        let expected: Vec<u64> = (1..=STEPS as u64 + 2).collect();
        assert_eq!(seqs, expected, "run-{w}: every write once, in order");
    }
    assert_eq!(
        store.events(&t, &done, 1).await?.len(),
        2,
        "nothing reached the finished run"
    );
    Ok(())
}
