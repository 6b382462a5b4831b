//! The shared contract suite against the SQLite adapter, on a real database file per
//! test.

use adapter_sqlite::SqliteStore;

fn main() -> std::process::ExitCode {
    let base =
        std::env::temp_dir().join(format!("flowstore-sqlite-contract-{}", std::process::id()));
    let dirs = base.clone();
    let code = storage_contract::run("sqlite", move || {
        let file = dirs.join(format!("{}.db", storage_ports::RunId::generate()));
        async move {
            SqliteStore::open(file)
                .await
                .map(|s| s.store_set())
                .map_err(|e| e.to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    code
}
