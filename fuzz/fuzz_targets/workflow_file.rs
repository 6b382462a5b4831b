//! Workflow files as people edit them on disk: whatever `v1.yaml` and `v2.yaml` hold,
//! reading, listing and walking the lineage answer a version, not-found or corrupt data,
//! never a panic or a hang. A version that reads back is then written through the
//! store elsewhere and must read back the same (what a write accepts, a read returns).
//!
//! Input: the text of `v1.yaml`, optionally followed by a line `---v2` and the text of
//! `v2.yaml`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use storage_ports::{ErrorKind, NewWorkflowVersion, PageRequest, StoreSet, TenantId, WorkflowId};

struct World {
    rt: tokio::runtime::Runtime,
    set: StoreSet,
    root: PathBuf,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        // tmpfs where there is one: the fs adapter fsyncs every write.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("flowstore-fuzz-wf-{}", std::process::id()));
        let set = adapter_fs::open(
            &serde_json::from_value(serde_json::json!({ "path": root })).expect("a config"),
            storage_ports::PayloadLimit::default(),
        )
        .expect("an fs store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        World { rt, set, root }
    })
}

fn expected<T>(r: storage_ports::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::CorruptData | ErrorKind::NotFound),
                "{e}"
            );
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let (t, u) = (
        TenantId::new("t").expect("id"),
        TenantId::new("u").expect("id"),
    );
    let wf = WorkflowId::new("wf").expect("id");
    let dir = w.root.join("t/workflows/wf");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(w.root.join("u/workflows/wf"));
    std::fs::create_dir_all(&dir).expect("a workflow dir");
    let (v1, v2) = match data.windows(7).position(|x| x == b"\n---v2\n") {
        Some(i) => (&data[..i], Some(&data[i + 7..])),
        None => (data, None),
    };
    std::fs::write(dir.join("v1.yaml"), v1).expect("v1 written");
    if let Some(v2) = v2 {
        std::fs::write(dir.join("v2.yaml"), v2).expect("v2 written");
    }
    w.rt.block_on(async {
        let store = &w.set.workflows;
        let _ = expected(store.versions(&t, &wf).await);
        let _ = expected(store.lineage(&t, &wf, 2).await);
        let _ = expected(store.lineage(&t, &wf, 1).await);
        let _ = expected(store.latest(&t, &wf).await);
        if let Err(e) = store.list(&t, PageRequest::first(10)).await {
            panic!("a damaged file broke the listing: {e}");
        }
        let Some(read) = expected(store.get(&t, &wf, 1).await) else {
            return;
        };
        let again = NewWorkflowVersion {
            workflow_id: wf.clone(),
            version: Some(1),
            parent: None,
            author: read.meta.author.clone(),
            created_at: Some(read.meta.created_at),
            definition: read.definition.clone(),
        };
        if store.put(&u, again).await.is_ok() {
            let back = store
                .get(&u, &wf, 1)
                .await
                .expect("an accepted write reads back");
            assert_eq!(back.definition, read.definition);
            assert_eq!(back.meta.author, read.meta.author);
            assert_eq!(back.meta.created_at, read.meta.created_at);
        }
    });
});
