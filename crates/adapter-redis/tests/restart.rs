//! R2 on Redis: the server restarts under a workload. The store recovers without being
//! reopened (the connection manager reconnects), and calls in flight either succeed or
//! fail with a retryable error. Alone in its binary, since the restart cuts every
//! connection to the server.
//!
//! The test server runs with an append-only file and SHUTDOWN writes it, so acknowledged
//! writes survive this restart; with persistence off they would not, which is Redis's
//! trade-off to choose in its own configuration, not the adapter's.

use std::time::Duration;

use adapter_redis::RedisStore;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_in_the_middle_of_a_workload() -> TestResult {
    let restart = env("FLOWSTORE_TEST_REDIS_RESTART")?;
    let s = RedisStore::connect(&env("FLOWSTORE_TEST_REDIS_URL")?).await?;
    let t = TenantId::new(format!("t{}", RunId::generate()))?;
    let writer = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move {
            let (mut acked, mut retryable) = (Vec::new(), 0_u32);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut i = 0_u64;
            while tokio::time::Instant::now() < deadline {
                i += 1;
                let id = format!("r{i}");
                let run = complete(&id, i).map_err(|e| e.to_string())?;
                match s.store_complete(&t, run).await {
                    Ok(()) => acked.push(id),
                    Err(e) if e.is_retryable() => {
                        retryable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
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
    let mut missing = Vec::new();
    for id in &acked {
        if s.get(&t, &RunId::new(id.clone())?).await.is_err() {
            missing.push(id.clone());
        }
    }
    // appendfsync everysec: a write acknowledged in the last second before a crash may
    // be lost; SHUTDOWN flushes, so none may be lost here.
    assert!(
        missing.is_empty(),
        "acknowledged runs lost across the restart: {missing:?}"
    );
    s.store_complete(&t, complete("after", 0)?).await?;
    Ok(())
}
