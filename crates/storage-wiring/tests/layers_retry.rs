//! The retry layer: a retryable failure of a repeatable call is retried and the call
//! succeeds; a call that could take effect twice is not retried; a failed precondition is never
//! retried. The inner store is the memory adapter behind a wrapper that makes the
//! first attempt of every workflow call fail as an unreachable server would.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use storage_ports::{
    Error, ErrorKind, NewWorkflowVersion, Page, PageRequest, Result, StoreSet, TenantId,
    VersionMeta, WorkflowId, WorkflowStore, WorkflowVersion,
};
use storage_wiring::layers::{LayerConfig, Layered, RetryPolicy};

/// Fails every other call with `Unavailable`, starting with the first.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn WorkflowStore>,
    calls: AtomicU32,
}

impl Flaky {
    fn trip(&self) -> Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            return Err(Error::unavailable("connection reset"));
        }
        Ok(())
    }
}

#[async_trait]
impl WorkflowStore for Flaky {
    async fn put(&self, t: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.trip()?;
        self.inner.put(t, new).await
    }
    async fn get(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<WorkflowVersion> {
        self.trip()?;
        self.inner.get(t, id, v).await
    }
    async fn latest(&self, t: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        self.trip()?;
        self.inner.latest(t, id).await
    }
    async fn versions(&self, t: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.trip()?;
        self.inner.versions(t, id).await
    }
    async fn lineage(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<Vec<VersionMeta>> {
        self.trip()?;
        self.inner.lineage(t, id, v).await
    }
    async fn list(&self, t: &TenantId, p: PageRequest) -> Result<Page<VersionMeta>> {
        self.trip()?;
        self.inner.list(t, p).await
    }
    async fn delete(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<()> {
        self.trip()?;
        self.inner.delete(t, id, v).await
    }
}

fn layered(retry: bool) -> StoreSet {
    let mut set = adapter_memory::MemoryStore::default().store_set();
    set.workflows = Arc::new(Flaky {
        inner: set.workflows.clone(),
        calls: AtomicU32::new(0),
    });
    Layered::wrap(
        set,
        LayerConfig {
            tracing: false,
            retry: retry.then_some(RetryPolicy {
                attempts: 3,
                base_ms: 1,
                max_ms: 5,
            }),
        },
        Vec::new(),
    )
}

#[tokio::test]
async fn repeatable_calls_are_retried_others_are_not(
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let t = TenantId::new("acme")?;
    let wf = WorkflowId::new("etl")?;
    let set = layered(true);
    // An explicit version makes a put repeatable: retried, then stored.
    let mut v1 = NewWorkflowVersion::next(wf.clone(), json!({"n": 1}));
    v1.version = Some(1);
    set.workflows.put(&t, v1).await?;
    // A read is retried.
    assert_eq!(
        set.workflows.get(&t, &wf, 1).await?.definition,
        json!({"n": 1})
    );
    // A put without a version could store twice: its first failure reaches the caller.
    let e = set
        .workflows
        .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 2})))
        .await
        .err()
        .ok_or("an unversioned put was retried")?;
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // A failed precondition is never retried: it is the answer.
    let mut clash = NewWorkflowVersion::next(wf.clone(), json!({"other": true}));
    clash.version = Some(1);
    let e = set
        .workflows
        .put(&t, clash)
        .await
        .err()
        .ok_or("a clash was accepted")?;
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    // Without the retry layer, the first failure is returned as it is.
    let plain = layered(false);
    let e = plain
        .workflows
        .latest(&t, &wf)
        .await
        .err()
        .ok_or("no failure")?;
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    Ok(())
}
