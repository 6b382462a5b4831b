//! One line of a prune archive, as `flowstore runs import` reads it: a line that parses
//! as a run is stored or refused as invalid input, and a stored run reads back exactly
//! as it was given (what a write accepts, a read returns).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use storage_ports::{CompleteRun, ErrorKind, StoreSet, TenantId};

fn world() -> &'static (tokio::runtime::Runtime, StoreSet) {
    static W: OnceLock<(tokio::runtime::Runtime, StoreSet)> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let set =
            adapter_memory::MemoryStore::new(adapter_memory::MemoryOptions::default()).store_set();
        (rt, set)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(run) = serde_json::from_slice::<CompleteRun>(data) else {
        return;
    };
    let (rt, set) = world();
    let t = TenantId::new("t").expect("id");
    rt.block_on(async {
        let id = run.run.run_id.clone();
        let results = set
            .runs
            .store_complete_batch(&t, vec![run.clone()])
            .await
            .expect("a batch answers per run");
        match results.into_iter().next().expect("one answer per run") {
            Ok(()) => {
                let back = set
                    .runs
                    .get_complete(&t, &id)
                    .await
                    .expect("a stored run reads back");
                assert_eq!(back, run, "the run changed on the way in");
                let line = serde_json::to_string(&back).expect("a run serialises");
                let again: CompleteRun = serde_json::from_str(&line).expect("its line parses");
                assert_eq!(again, run, "the run changed in its archive line");
                set.runs.delete(&t, &id).await.expect("the run is deleted");
            }
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::AlreadyExists),
                "{e}"
            ),
        }
    });
});
