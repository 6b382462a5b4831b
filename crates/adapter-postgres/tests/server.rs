//! Behaviours that need a real PostgreSQL server beyond the contract suite: Q7 at
//! scale, isolation with identical ids in every port, and the schema's shape on the
//! server. (The restart test has its own binary, `tests/restart.rs`.)
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, which `cargo xtask test` sets.

use std::sync::Arc;
use std::time::Duration;

use adapter_postgres::{Config, PostgresStore};
use storage_contract::servers::{fresh_tenant, identical_ids_stay_apart, server_env};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn store() -> Result<PostgresStore, Box<dyn std::error::Error>> {
    Ok(PostgresStore::connect(&Config::new(server_env("FLOWSTORE_TEST_POSTGRES_URL")?)).await?)
}

/// Q7 at scale: 8 workers, 10,000 jobs, 2 s leases, one lease in 500 held past its
/// expiry: every job acknowledged exactly once, none lost, none leased twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q7_ten_thousand_jobs_eight_workers() -> TestResult {
    let report = storage_contract::scale::q7_at_scale(
        Arc::new(store().await?),
        fresh_tenant()?,
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
    identical_ids_stay_apart(&store().await?.store_set())
        .await
        .map_err(|f| f.0)?;
    Ok(())
}

/// Every table has the tenant first in its primary key, and every payload is JSONB.
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
