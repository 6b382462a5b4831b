//! The contract suite against a mixed wiring, as config builds it: workflows as files
//! (adapter-fs), everything else in memory. Proves that per-concern composition keeps
//! every behaviour, including T1 (runs and queue share one backend) and O2 stats.

use storage_wiring::{BackendConfig, BackendKind, Storage, StorageConfig};

fn main() -> std::process::ExitCode {
    let base =
        std::env::temp_dir().join(format!("flowstore-mixed-contract-{}", std::process::id()));
    let roots = base.clone();
    let code = storage_contract::run("fs+memory", move || {
        let mut config = StorageConfig::memory();
        let mut fs = BackendConfig::of(BackendKind::Fs);
        fs.path = Some(roots.join(storage_ports::RunId::generate().as_str()));
        config.workflows = fs;
        async move {
            Storage::build(&config)
                .map(|s| s.ports().clone())
                .map_err(|e| e.to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    code
}
