//! R2 on Redis: the server restarts under a workload; the connection manager
//! reconnects, calls in flight succeed or fail retryably, and every acknowledged write
//! is there. Alone in its binary, since the restart cuts every connection.
//!
//! The test server runs with an append-only file and SHUTDOWN writes it, so
//! acknowledged writes survive this restart; with persistence off they would not, which
//! is Redis's configuration to choose, not the adapter's.

use std::sync::Arc;

use adapter_redis::RedisStore;
use storage_contract::servers::{restart_under_load, server_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_in_the_middle_of_a_workload() -> Result<(), Box<dyn std::error::Error>> {
    let store = RedisStore::connect(&server_env("FLOWSTORE_TEST_REDIS_URL")?).await?;
    let report = restart_under_load(
        Arc::new(store),
        &server_env("FLOWSTORE_TEST_REDIS_RESTART")?,
    )
    .await
    .map_err(|f| f.0)?;
    eprintln!("redis restart: {report:?}");
    Ok(())
}
