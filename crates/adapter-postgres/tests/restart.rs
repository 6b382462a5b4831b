//! R2 on PostgreSQL: the server restarts under a workload. Alone in its binary, since
//! the restart cuts every connection to the server (test binaries run one at a time).
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, and the restart from the script
//! in `FLOWSTORE_TEST_POSTGRES_RESTART`; `cargo xtask test` sets both.

use std::time::Duration;

use adapter_postgres::{PostgresOptions, PostgresStore};
use serde_json::json;
use storage_ports::{
    CompleteRun, ErrorKind, NewRun, Run, RunId, RunStore, TenantId, Timestamp, WorkflowId,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run `cargo xtask test`, or start a server with `cargo xtask services` and export what it prints")
    })
}

async fn store() -> Result<PostgresStore, Box<dyn std::error::Error>> {
    Ok(PostgresStore::connect(
        &env("FLOWSTORE_TEST_POSTGRES_URL")?,
        PostgresOptions::default(),
    )
    .await?)
}

fn tenant() -> Result<TenantId, storage_ports::Error> {
    TenantId::new(format!("t{}", RunId::generate()))
}

fn complete(id: &str, i: u64) -> Result<CompleteRun, storage_ports::Error> {
    let mut run = Run::started(NewRun {
        run_id: RunId::new(id)?,
        workflow_id: WorkflowId::new("restart")?,
        version: 1,
        inputs: json!({"i": i}),
        started_at: Timestamp::now(),
    });
    run.apply(storage_ports::RunOutcome::succeeded(
        json!(i),
        Timestamp::now(),
    ));
    Ok(CompleteRun {
        run,
        steps: Vec::new(),
    })
}

/// R2: the server restarts (immediate shutdown, as a crash) in the middle of a
/// workload; the store recovers without being reopened, calls in flight either
/// succeed or fail with a retryable error, and every acknowledged write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_in_the_middle_of_a_workload() -> TestResult {
    let restart = env("FLOWSTORE_TEST_POSTGRES_RESTART")?;
    let s = store().await?;
    let t = tenant()?;
    let writer = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move {
            let (mut acked, mut retryable) = (Vec::new(), 0_u32);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
            let mut i = 0_u64;
            while tokio::time::Instant::now() < deadline {
                i += 1;
                let id = format!("r{i}");
                match s
                    .store_complete(&t, complete(&id, i).map_err(|e| e.to_string())?)
                    .await
                {
                    Ok(()) => acked.push(id),
                    Err(e) if e.is_retryable() => {
                        retryable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // A retry of a write that committed before the connection died.
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(format!("non-retryable error during the restart: {e}")),
                }
            }
            Ok::<_, String>((acked, retryable))
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let out = std::process::Command::new("sh").arg(&restart).output()?;
    assert!(
        out.status.success(),
        "restart script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (acked, retryable) = writer.await??;
    eprintln!(
        "{} writes acknowledged around the restart, {retryable} retryable failures",
        acked.len()
    );
    assert!(
        acked.len() > 20,
        "too few writes went through: {}",
        acked.len()
    );
    // Same store, same pool: it must work again, and hold every acknowledged run.
    for id in &acked {
        s.get(&t, &RunId::new(id.clone())?).await?;
    }
    s.store_complete(&t, complete("after", 0)?).await?;
    Ok(())
}
