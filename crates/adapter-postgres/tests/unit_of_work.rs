//! T3 on a real server: a unit of work whose connection drops (its backend is
//! terminated, as a failover or an idle-session timeout would) writes nothing, its
//! commit fails with an error the host can act on, and the store goes on working.
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, which `cargo xtask test` sets.

use adapter_postgres::{Config, PostgresStore};
use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::TransactionsExt as _;
use storage_ports::{
    CollectionName, DocumentId, DocumentStore, ErrorKind, JobQueue, NewJob, NewRun, QueueName,
    RunId, RunStore, Timestamp, Transactions, WorkflowId,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn t3_a_unit_whose_connection_drops_writes_nothing() -> TestResult {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    // The unit's session is found by its application name.
    let app = format!("flowstore-t3-{}", RunId::generate());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store =
        PostgresStore::connect(&Config::new(format!("{url}{sep}application_name={app}"))).await?;
    let admin = sqlx::PgPool::connect(&url).await?;
    let t = fresh_tenant()?;
    let c = CollectionName::new("executions")?;
    let q = QueueName::new("t3-drop")?;
    let d = DocumentId::new("e1")?;
    let run_id = RunId::generate();

    let mut tx = store.begin(&t).await?;
    tx.create_document(&c, Some(d.clone()), json!({"status": "queued"}))
        .await?;
    tx.start_run(NewRun {
        run_id: run_id.clone(),
        workflow_id: WorkflowId::new("nightly")?,
        version: 1,
        inputs: json!({}),
        started_at: Timestamp::now(),
    })
    .await?;
    tx.enqueue(&q, NewJob::new(json!({"execution": "e1"})))
        .await?;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND state = 'idle in transaction'",
    )
    .bind(&app)
    .fetch_all(&admin)
    .await?;
    assert_eq!(
        killed,
        [true],
        "the unit's session was not found to terminate"
    );

    let kind = tx.commit().await.err().map(|e| e.kind());
    assert!(
        matches!(kind, Some(ErrorKind::Unavailable | ErrorKind::Backend)),
        "commit on a dropped connection must fail as unavailable: {kind:?}"
    );
    assert_eq!(
        DocumentStore::get(&store, &t, &c, &d)
            .await
            .map(|_| ())
            .map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "document of the dropped unit"
    );
    assert_eq!(
        RunStore::get(&store, &t, &run_id)
            .await
            .map(|_| ())
            .map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "run of the dropped unit"
    );
    assert_eq!(
        JobQueue::stats(&store, &t, &q).await?.pending,
        0,
        "job of the dropped unit"
    );

    // The pool replaced the dropped connection: the next unit commits.
    let (c2, q2) = (c.clone(), q.clone());
    store
        .unit_of_work(&t, move |tx| {
            Box::pin(async move {
                let doc = tx.create_document(&c2, None, json!({})).await?;
                tx.enqueue(&q2, NewJob::new(json!({"execution": doc.id.as_str()})))
                    .await?;
                Ok::<_, storage_ports::Error>(())
            })
        })
        .await?;
    assert_eq!(
        JobQueue::stats(&store, &t, &q).await?.pending,
        1,
        "job of the next unit"
    );
    Ok(())
}
