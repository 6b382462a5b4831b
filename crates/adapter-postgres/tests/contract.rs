//! The shared contract suite against a real PostgreSQL server.
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, which `cargo xtask test` sets
//! after starting a throwaway cluster. Without it, every test fails and says so.

use adapter_postgres::{Config, PostgresStore};

fn main() -> std::process::ExitCode {
    let url = std::env::var("FLOWSTORE_TEST_POSTGRES_URL").ok();
    storage_contract::run("postgres", move || {
        let url = url.clone();
        async move {
            let url = url.ok_or_else(|| {
                "FLOWSTORE_TEST_POSTGRES_URL is not set: run `cargo xtask test`, or start a server with `cargo xtask services` and export what it prints".to_owned()
            })?;
            PostgresStore::connect(&Config::new(url.clone()))
                .await
                .map(|s| s.store_set())
                .map_err(|e| e.to_string())
        }
    })
}
