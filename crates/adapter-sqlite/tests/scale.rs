//! Q7 at scale on one SQLite file: 8 workers, 10,000 jobs, 2 s leases, one lease in 500
//! held past its expiry. Every job is acknowledged exactly once, none is lost, none is
//! leased twice at once, and no `SQLITE_BUSY` reaches a worker (write transactions begin
//! IMMEDIATE and wait for the lock).

use std::sync::Arc;
use std::time::Duration;

use adapter_sqlite::SqliteStore;
use storage_ports::{RunId, TenantId};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn q7_ten_thousand_jobs_eight_workers() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("flowstore-sqlite-scale-{}", RunId::generate()));
    let store = SqliteStore::open(dir.join("q.db")).await?;
    let report = storage_contract::scale::q7_at_scale(
        Arc::new(store),
        TenantId::new("scale")?,
        10_000,
        8,
        Duration::from_secs(2),
        500,
    )
    .await
    .map_err(|f| f.0)?;
    eprintln!("sqlite Q7 at scale: {report:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
