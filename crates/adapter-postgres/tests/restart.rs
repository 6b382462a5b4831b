//! R2 on PostgreSQL: the server restarts (immediate shutdown, as a crash) under a
//! workload; the same store recovers and every acknowledged write is there. Alone in
//! its binary, since the restart cuts every connection to the server (test binaries run
//! one at a time).
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, the restart from the script in
//! `FLOWSTORE_TEST_POSTGRES_RESTART`; `cargo xtask test` sets both.

use std::sync::Arc;

use adapter_postgres::{Config, PostgresStore};
use storage_contract::servers::{restart_under_load, server_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_in_the_middle_of_a_workload() -> Result<(), Box<dyn std::error::Error>> {
    let store =
        PostgresStore::connect(&Config::new(server_env("FLOWSTORE_TEST_POSTGRES_URL")?)).await?;
    let report = restart_under_load(
        Arc::new(store),
        &server_env("FLOWSTORE_TEST_POSTGRES_RESTART")?,
    )
    .await
    .map_err(|f| f.0)?;
    eprintln!("postgres restart: {report:?}");
    Ok(())
}
