//! The contract suite against a mixed wiring built from config, the shape of the
//! embedded default: workflows as files (adapter-fs), runs, metrics, queue and documents
//! in one SQLite file (adapter-sqlite), credentials in memory. Proves that per-concern composition keeps every
//! behaviour, including T1 (runs and queue share the SQLite
//! instance) and O2 stats.

use storage_wiring::{BackendConfig, Storage, StorageConfig};

fn main() -> std::process::ExitCode {
    let base =
        std::env::temp_dir().join(format!("flowstore-mixed-contract-{}", std::process::id()));
    let roots = base.clone();
    let code = storage_contract::run("fs+sqlite+memory", move || {
        let root = roots.join(storage_ports::RunId::generate().as_str());
        let mut config = StorageConfig::memory();
        config.workflows = BackendConfig::of("fs").with("path", root.display().to_string());
        let sqlite = BackendConfig::of("sqlite")
            .with("path", root.join("flowstore.db").display().to_string());
        config.runs = sqlite.clone();
        config.metrics = sqlite.clone();
        config.queue = sqlite.clone();
        config.documents = sqlite;
        async move {
            Storage::build(&config)
                .await
                .map(|s| s.ports().clone())
                .map_err(|e| e.to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    code
}
