//! Behaviours that need a real Redis server beyond the contract suite: Q7 at scale,
//! tenant isolation with identical ids, and the key space itself (only
//! tenant-prefixed keys). The restart test has its own binary, `tests/restart.rs`.
//!
//! The server comes from `FLOWSTORE_TEST_REDIS_URL`, which `cargo xtask test` sets.

use std::sync::Arc;
use std::time::Duration;

use adapter_redis::RedisStore;
use serde_json::json;
use storage_ports::{
    CollectionName, CompleteRun, DocumentId, DocumentStore, JobQueue, NewJob, NewRun,
    NewWorkflowVersion, QueueName, Run, RunId, RunStore, TenantId, Timestamp, WorkflowId,
    WorkflowStore,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn url() -> Result<String, String> {
    std::env::var("FLOWSTORE_TEST_REDIS_URL").map_err(|_| {
        "FLOWSTORE_TEST_REDIS_URL is not set: run `cargo xtask test`, or start a server with `cargo xtask services` and export what it prints".to_owned()
    })
}

fn tenant() -> Result<TenantId, storage_ports::Error> {
    TenantId::new(format!("t{}", RunId::generate()))
}

fn complete(id: &str, i: u64) -> Result<CompleteRun, storage_ports::Error> {
    let mut run = Run::started(NewRun {
        run_id: RunId::new(id)?,
        workflow_id: WorkflowId::new("iso")?,
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
    let s = RedisStore::connect(&url()?).await?;
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
    eprintln!("redis Q7 at scale: {report:?}");
    assert!(
        report.stale_acks > 0,
        "no lease was taken over; the stalls did not happen"
    );
    Ok(())
}

/// Two tenants, identical ids in every port: each sees only its own; then every key
/// on the server (read with SCAN, which the adapter itself never uses) is
/// tenant-prefixed.
#[tokio::test]
async fn identical_ids_in_two_tenants_stay_apart_and_every_key_is_tenant_prefixed() -> TestResult {
    let s = RedisStore::connect(&url()?).await?;
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
        s.enqueue(
            t,
            &q,
            NewJob::new(json!(i)).with_id(storage_ports::JobId::new("same")?),
        )
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
        .dequeue(
            &a,
            &q,
            storage_ports::Dequeue::batch(10, Duration::from_secs(30)),
        )
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

    let client = redis::Client::open(url()?)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0_u64;
    let mut seen = 0_usize;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        for k in &keys {
            let tenant = k
                .strip_prefix("flowstore:{")
                .and_then(|r| r.split_once("}:"))
                .map(|(t, _)| t);
            assert!(
                tenant.is_some_and(|t| TenantId::new(t).is_ok()),
                "key {k:?} is not tenant-prefixed"
            );
        }
        seen += keys.len();
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(seen > 0);
    eprintln!("{seen} keys on the server, all tenant-prefixed");
    Ok(())
}
