//! The shared contract suite against the file adapter, on a real directory per test.

use adapter_fs::FsStore;

fn main() -> std::process::ExitCode {
    let base = std::env::temp_dir().join(format!("flowstore-fs-contract-{}", std::process::id()));
    let roots = base.clone();
    let code = storage_contract::run("fs", move || {
        let root = roots.join(storage_ports::RunId::generate().as_str());
        async move {
            FsStore::open(root)
                .map(|s| s.store_set())
                .map_err(|e| e.to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    code
}
