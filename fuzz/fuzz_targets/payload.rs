//! Payload JSON as callers send it: as run inputs, a document body and a job payload on
//! the memory adapter, and as a workflow definition on the fs adapter (YAML on disk).
//! Each is stored and read back equal, or refused as invalid input; never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use storage_ports::{
    CollectionName, Dequeue, ErrorKind, JobQueueExt, NewJob, NewRun, NewWorkflowVersion, QueueName,
    RunId, StoreSet, TenantId, Timestamp, WorkflowId,
};

struct World {
    rt: tokio::runtime::Runtime,
    memory: StoreSet,
    fs: StoreSet,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("flowstore-fuzz-payload-{}", std::process::id()));
        let fs = adapter_fs::open(
            &serde_json::from_value(serde_json::json!({ "path": root })).expect("a config"),
            storage_ports::PayloadLimit::default(),
        )
        .expect("an fs store");
        World {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            memory: adapter_memory::MemoryStore::new(adapter_memory::MemoryOptions::default())
                .store_set(),
            fs,
        }
    })
}

fn refused<T: std::fmt::Debug>(r: &storage_ports::Result<T>) -> bool {
    match r {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            true
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let w = world();
    let t = TenantId::new("t").expect("id");
    w.rt.block_on(async {
        let run = NewRun {
            run_id: RunId::generate(),
            workflow_id: WorkflowId::new("wf").expect("id"),
            version: 1,
            inputs: v.clone(),
            started_at: Timestamp::now(),
        };
        let id = run.run_id.clone();
        let started = w.memory.runs.start(&t, run).await;
        if !refused(&started) {
            let back = w
                .memory
                .runs
                .get(&t, &id)
                .await
                .expect("a started run reads back");
            assert_eq!(back.inputs, v);
            w.memory.runs.delete(&t, &id).await.expect("deleted");
        }
        let coll = CollectionName::new("c").expect("id");
        let created = w.memory.documents.create(&t, &coll, None, v.clone()).await;
        if let Ok(doc) = &created {
            let back = w
                .memory
                .documents
                .get(&t, &coll, &doc.id)
                .await
                .expect("reads back");
            assert_eq!(back.body, v);
            w.memory
                .documents
                .delete(&t, &coll, &doc.id, None)
                .await
                .expect("deleted");
        } else {
            assert!(refused(&created));
        }
        let q = QueueName::new("q").expect("id");
        let enqueued = w.memory.queue.enqueue(&t, &q, NewJob::new(v.clone())).await;
        if !refused(&enqueued) {
            let jobs = w
                .memory
                .queue
                .dequeue(&t, &q, Dequeue::one(std::time::Duration::from_secs(60)))
                .await
                .expect("a dequeue");
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].payload, v);
            w.memory.queue.ack(&t, &jobs[0].lease).await.expect("acked");
        }
        let wf = WorkflowId::new(format!("w{}", RunId::generate())).expect("id");
        let put =
            w.fs.workflows
                .put(&t, NewWorkflowVersion::next(wf.clone(), v.clone()))
                .await;
        if !refused(&put) {
            let back =
                w.fs.workflows
                    .get(&t, &wf, 1)
                    .await
                    .expect("a workflow reads back");
            assert_eq!(
                back.definition, v,
                "the definition changed in its YAML file"
            );
            w.fs.workflows.delete(&t, &wf, 1).await.expect("deleted");
        }
    });
});
