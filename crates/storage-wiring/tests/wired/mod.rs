//! The contract suite on a wiring chosen the way an operator moves to a server: a YAML
//! file for the embedded default, then environment overrides that put runs, metrics,
//! the queue and documents on the server (`FLOWSTORE_<CONCERN>__TYPE` and `__URL`).
//! Workflows stay files. Shared by one test binary per server backend.

use storage_wiring::{Storage, StorageConfig};

/// Runs the suite with those four concerns on `backend`, whose URL is in `url_var`.
pub fn run(backend: &'static str, url_var: &'static str) -> std::process::ExitCode {
    let url = std::env::var(url_var).ok();
    let base =
        std::env::temp_dir().join(format!("flowstore-{backend}-wired-{}", std::process::id()));
    let roots = base.clone();
    let name = format!("fs+{backend} (config + env)");
    let code = storage_contract::run(&name, move || {
        let root = roots.join(storage_ports::RunId::generate().as_str());
        let url = url.clone();
        async move {
            let url = url.ok_or_else(|| {
                format!("{url_var} is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` and export what it prints")
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
                        (format!("FLOWSTORE_{c}__TYPE"), backend.to_owned()),
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
