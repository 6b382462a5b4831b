//! Behaviours that need a real PostgreSQL server beyond the contract suite: Q7 at
//! scale, tenant isolation with identical ids, and what the schema looks like on the
//! server. (The restart test has its own binary, `tests/restart.rs`, so that it
//! cannot cut the connections of these.)
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, which `cargo xtask test` sets.

use std::sync::Arc;
use std::time::Duration;

use adapter_postgres::{PostgresOptions, PostgresStore};
use serde_json::json;
use storage_ports::{
    CollectionName, CompleteRun, Dequeue, DocumentId, DocumentStore, JobId, JobQueue, NewJob,
    NewRun, NewWorkflowVersion, QueueName, Run, RunId, RunStore, TenantId, Timestamp, WorkflowId,
    WorkflowStore,
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

/// Q7 at scale: 8 workers, 10,000 jobs, 2 s leases, one lease in 500 held past its
/// expiry: every job acknowledged exactly once, none lost, none leased twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q7_ten_thousand_jobs_eight_workers() -> TestResult {
    let s = store().await?;
    let report = storage_contract::scale::q7_at_scale(
        Arc::new(s),
        tenant()?,
        10_000,
        8,
        Duration::from_secs(2),
        500,
    )
    .await
    .map_err(|f| f.0)?;
    eprintln!("postgres Q7 at scale: {report:?}");
    assert!(
        report.stale_acks > 0,
        "no lease was taken over; the stalls did not happen"
    );
    Ok(())
}

/// Isolation (W9, E10, Q8, D2) on one server: identical ids in two tenants, in every
/// port, never meet.
#[tokio::test]
async fn identical_ids_in_two_tenants_stay_apart() -> TestResult {
    let s = store().await?;
    let (a, b) = (tenant()?, tenant()?);
    let (wf, q, c) = (
        WorkflowId::new("same")?,
        QueueName::new("same")?,
        CollectionName::new("same")?,
    );
    for (t, i) in [(&a, 1_u64), (&b, 2)] {
        s.put(t, NewWorkflowVersion::next(wf.clone(), json!({"i": i})))
            .await?;
        s.store_complete(t, complete("same", i)?).await?;
        s.enqueue(t, &q, NewJob::new(json!(i)).with_id(JobId::new("same")?))
            .await?;
        s.create(t, &c, Some(DocumentId::new("same")?), json!({"i": i}))
            .await?;
    }
    let id = RunId::new("same")?;
    assert_eq!(RunStore::get(&s, &a, &id).await?.inputs, json!({"i": 1}));
    assert_eq!(RunStore::get(&s, &b, &id).await?.inputs, json!({"i": 2}));
    assert_eq!(
        WorkflowStore::get(&s, &b, &wf, 1).await?.definition,
        json!({"i": 2})
    );
    let jobs = s
        .dequeue(&a, &q, Dequeue::batch(10, Duration::from_secs(30)))
        .await?;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload, json!(1));
    assert_eq!(
        DocumentStore::get(&s, &b, &c, &DocumentId::new("same")?)
            .await?
            .body,
        json!({"i": 2})
    );
    RunStore::delete(&s, &a, &id).await?;
    assert_eq!(RunStore::get(&s, &b, &id).await?.inputs, json!({"i": 2}));
    Ok(())
}

/// Every table has the tenant first in its primary key, and every JSON column is JSONB.
#[tokio::test]
async fn every_table_is_keyed_by_tenant_and_holds_jsonb() -> TestResult {
    let s = store().await?;
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
         WHERE i.indisprimary AND c.relname LIKE 'flowstore\\_%'",
    )
    .fetch_all(s.pool())
    .await?;
    assert!(keys.len() >= 10, "tables found: {keys:?}");
    for (table, first) in &keys {
        assert_eq!(first, "tenant", "{table}'s primary key starts with {first}");
    }
    let payloads = [
        ("flowstore_workflow_versions", "definition"),
        ("flowstore_runs", "inputs"),
        ("flowstore_runs", "output"),
        ("flowstore_runs", "error"),
        ("flowstore_run_events", "kind"),
        ("flowstore_jobs", "payload"),
        ("flowstore_documents", "body"),
        ("flowstore_metric_records", "record"),
        ("flowstore_metric_aggregates", "state"),
        ("flowstore_patterns", "pattern"),
    ];
    for (table, column) in payloads {
        let ty: String = sqlx::query_scalar(
            "SELECT data_type::text FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .fetch_one(s.pool())
        .await?;
        assert_eq!(ty, "jsonb", "{table}.{column} is {ty}");
    }
    Ok(())
}
