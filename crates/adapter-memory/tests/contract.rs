//! The shared contract suite against the memory adapter: every behaviour, each a
//! separately reported test.

use adapter_memory::{MemoryOptions, MemoryStore};

fn main() -> std::process::ExitCode {
    storage_contract::run("memory", || async {
        Ok(MemoryStore::new(MemoryOptions::default()).store_set())
    })
}
