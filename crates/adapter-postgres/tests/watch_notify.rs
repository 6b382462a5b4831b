//! E7 on PostgreSQL across nodes: a step appended through one store reaches the
//! watcher of a second store (another node), and the append is announced on the
//! channel `flowstore_runs` with `<tenant>/<run_id>` (schema 8), which is what wakes
//! watchers instead of a timer.

use std::time::Duration;

use adapter_postgres::{Config, PostgresStore};
use futures_util::StreamExt as _;
use serde_json::json;
use storage_contract::servers::server_env;
use storage_ports::{
    NewRun, RunId, RunStep, RunStore, TenantId, Timestamp, VariableSnapshot, WorkflowId,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn step(i: i64) -> RunStep {
    RunStep::Snapshot(VariableSnapshot {
        name: "n".into(),
        old_value: json!(i),
        new_value: json!(i + 1),
        at: Timestamp::now(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_on_one_node_is_announced_and_reaches_another_nodes_watcher() -> TestResult {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let (a, b) = (
        PostgresStore::connect(&Config::new(url.clone())).await?,
        PostgresStore::connect(&Config::new(url.clone())).await?,
    );
    let t = TenantId::new(format!("wn{}", RunId::generate()))?;
    let run = RunId::generate();
    a.start(
        &t,
        NewRun {
            run_id: run.clone(),
            workflow_id: WorkflowId::new("wf")?,
            version: 1,
            inputs: json!({}),
            started_at: Timestamp::now(),
        },
    )
    .await?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
    listener.listen("flowstore_runs").await?;
    let mut watched = b.watch(&t, &run, 2).await?;

    a.append(&t, &run, step(1)).await?;
    let key = format!("{}/{}", t.as_str(), run.as_str());
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = listener.recv().await?;
            if n.payload() == key {
                return Ok::<_, sqlx::Error>(());
            }
        }
    })
    .await;
    assert!(
        matches!(heard, Ok(Ok(()))),
        "the append was not announced as {key}"
    );
    let e = tokio::time::timeout(Duration::from_secs(10), watched.next())
        .await?
        .ok_or("the watch ended")??;
    assert_eq!(e.seq, 2, "the other node's watcher got the appended step");
    a.finish(
        &t,
        &run,
        storage_ports::RunOutcome::succeeded(json!({}), Timestamp::now()),
    )
    .await?;
    let last = tokio::time::timeout(Duration::from_secs(10), watched.next())
        .await?
        .ok_or("the watch ended before the finish")??;
    assert_eq!(last.seq, 3);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), watched.next())
            .await?
            .is_none(),
        "the watch ends after the finish"
    );
    Ok(())
}
