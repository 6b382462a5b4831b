//! Behaviours that need a real Redis server beyond the contract suite: Q7 at scale,
//! tenant isolation with identical ids, and the key space itself (only
//! tenant-prefixed keys). The restart test has its own binary, `tests/restart.rs`.
//!
//! The server comes from `FLOWSTORE_TEST_REDIS_URL`, which `cargo xtask test` sets.

use std::sync::Arc;
use std::time::Duration;

use adapter_redis::RedisStore;
use storage_contract::servers::{fresh_tenant, identical_ids_stay_apart, server_env};
use storage_ports::TenantId;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn url() -> Result<String, String> {
    server_env("FLOWSTORE_TEST_REDIS_URL")
}

/// Q7 at scale: 8 workers, 10,000 jobs, 2 s leases, one lease in 500 held past its
/// expiry: every job acknowledged exactly once, none lost, none leased twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q7_ten_thousand_jobs_eight_workers() -> TestResult {
    let s = RedisStore::connect(&url()?).await?;
    let report = storage_contract::scale::q7_at_scale(
        Arc::new(s),
        fresh_tenant()?,
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
    identical_ids_stay_apart(&s.store_set())
        .await
        .map_err(|f| f.0)?;

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
