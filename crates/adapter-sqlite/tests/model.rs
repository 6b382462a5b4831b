//! The queue model test (`storage_contract::model`) on a real SQLite file: the store
//! reads the reference's manual clock, so time steps cost nothing and every case can
//! make leases, delays and backoffs run out.

use std::sync::Arc;

use adapter_sqlite::SqliteStore;
use storage_contract::model::{check_queue_model, SubjectTime};
use storage_ports::{ManualClock, Timestamp};

#[test]
fn sqlite_follows_the_reference() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("flowstore-sqlite-model-{}", std::process::id()));
    let clock = ManualClock::at(Timestamp::now());
    let subject = rt
        .block_on(SqliteStore::open(dir.join("model.db")))
        .map_err(|e| e.to_string())?
        .with_clock(Arc::new(clock.clone()));
    let outcome = check_queue_model(&rt, &subject, &SubjectTime::Manual(clock), 64);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}
