//! The contract suite on a wiring chosen the way an operator would move to a server:
//! a YAML file for the embedded default, then environment overrides that put runs,
//! metrics, the queue and documents on PostgreSQL (`FLOWSTORE_<CONCERN>__TYPE` and
//! `__URL`). Workflows stay files. T1 holds, since runs and queue share the server.
//!
//! The server comes from `FLOWSTORE_TEST_POSTGRES_URL`, which `cargo xtask test` sets.

use storage_wiring::{Storage, StorageConfig};

fn main() -> std::process::ExitCode {
    let url = std::env::var("FLOWSTORE_TEST_POSTGRES_URL").ok();
    let base = std::env::temp_dir().join(format!("flowstore-pg-wired-{}", std::process::id()));
    let roots = base.clone();
    let code = storage_contract::run("fs+postgres (config + env)", move || {
        let root = roots.join(storage_ports::RunId::generate().as_str());
        let url = url.clone();
        async move {
            let url = url.ok_or_else(|| {
                "FLOWSTORE_TEST_POSTGRES_URL is not set: run `cargo xtask test`, or start a server with `cargo xtask services` and export what it prints".to_owned()
            })?;
            let yaml = format!(
                "workflows: {{ type: fs, path: {0} }}\nruns: {{ type: sqlite, path: {0}/flowstore.db }}\ncredentials: {{ type: memory }}\n",
                root.display()
            );
            let mut config = StorageConfig::from_yaml(&yaml).map_err(|e| e.to_string())?;
            let env = ["RUNS", "METRICS", "QUEUE", "DOCUMENTS"]
                .into_iter()
                .flat_map(|c| {
                    [
                        (format!("FLOWSTORE_{c}__TYPE"), "postgres".to_owned()),
                        (format!("FLOWSTORE_{c}__URL"), url.clone()),
                    ]
                });
            config.apply_env(env).map_err(|e| e.to_string())?;
            Storage::build(&config)
                .await
                .map(|s| s.ports().clone())
                .map_err(|e| e.to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    code
}
