//! The queue model test with the memory adapter as the subject: it shares the
//! reference's clock, so this checks the test itself (sequences replay the same on two
//! instances) and the memory adapter's determinism.

use std::sync::Arc;

use adapter_memory::{MemoryOptions, MemoryStore};
use storage_contract::model::{check_queue_model, SubjectTime};
use storage_ports::{ManualClock, Timestamp};

#[test]
fn memory_follows_the_reference() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let clock = ManualClock::at(Timestamp::now());
    let subject = MemoryStore::new(MemoryOptions::default().with_clock(Arc::new(clock.clone())));
    check_queue_model(&rt, &subject, &SubjectTime::Manual(clock), 128)
}
