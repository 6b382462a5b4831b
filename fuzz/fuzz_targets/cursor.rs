//! Cursors a caller hands back: any text given to any listing of the memory and fs
//! adapters answers a page or invalid input, never a panic or another error. The input
//! is tried as it is and hex-encoded, so that the fuzzer reaches the cursor's JSON.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use storage_ports::{
    CollectionName, Cursor, DocumentFilter, ErrorKind, NewRun, NewWorkflowVersion, PageRequest,
    RunId, RunQuery, StoreSet, TenantId, Timestamp, WorkflowId,
};

struct World {
    rt: tokio::runtime::Runtime,
    sets: Vec<StoreSet>,
    tenant: TenantId,
    coll: CollectionName,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir =
            std::env::temp_dir().join(format!("flowstore-fuzz-cursor-{}", std::process::id()));
        let fs = adapter_fs::open(
            &serde_json::from_value(json!({"path": dir})).expect("an fs config"),
            storage_ports::PayloadLimit::default(),
        )
        .expect("an fs store");
        let memory =
            adapter_memory::MemoryStore::new(adapter_memory::MemoryOptions::default()).store_set();
        let tenant = TenantId::new("t").expect("a tenant");
        let coll = CollectionName::new("c").expect("a collection");
        for set in [&memory, &fs] {
            rt.block_on(async {
                for n in 0..3 {
                    let wf = WorkflowId::new(format!("w{n}")).expect("an id");
                    set.workflows
                        .put(
                            &tenant,
                            NewWorkflowVersion::next(wf.clone(), json!({"n": n})),
                        )
                        .await
                        .expect("a workflow");
                    set.runs
                        .start(
                            &tenant,
                            NewRun {
                                run_id: RunId::generate(),
                                workflow_id: wf,
                                version: 1,
                                inputs: json!({}),
                                started_at: Timestamp::now(),
                            },
                        )
                        .await
                        .expect("a run");
                    set.documents
                        .create(&tenant, &coll, None, json!({"n": n}))
                        .await
                        .expect("a document");
                }
            });
        }
        World {
            rt,
            sets: vec![memory, fs],
            tenant,
            coll,
        }
    })
}

fn refused_or_ok<T>(r: storage_ports::Result<T>) {
    if let Err(e) = r {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut texts = vec![storage_ports::rules::hex::encode(data)];
    if let Ok(s) = std::str::from_utf8(data) {
        texts.push(s.to_owned());
    }
    for text in texts {
        let cursor = Cursor::from_string(text);
        for set in &w.sets {
            w.rt.block_on(async {
                let page = PageRequest::after(2, cursor.clone());
                refused_or_ok(set.workflows.list(&w.tenant, page.clone()).await);
                refused_or_ok(
                    set.documents
                        .list(&w.tenant, &w.coll, &DocumentFilter::all(), page)
                        .await,
                );
                refused_or_ok(
                    set.runs
                        .query(
                            &w.tenant,
                            RunQuery {
                                limit: 2,
                                cursor: Some(cursor.clone()),
                                ..RunQuery::default()
                            },
                        )
                        .await,
                );
            });
        }
    }
});
