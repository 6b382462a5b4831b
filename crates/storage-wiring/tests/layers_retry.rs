//! The retry layer: a retryable failure of a repeatable call is retried and the call
//! succeeds; a call that could take effect twice is not retried; a failed precondition is never
//! retried. The inner store is the memory adapter behind a wrapper that makes the
//! first attempt of every workflow call fail as an unreachable server would.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use storage_ports::{
    Error, ErrorKind, ErrorStatus, NewWorkflowVersion, Page, PageRequest, Result, StoreSet,
    TenantId, VersionMeta, WorkflowId, WorkflowStore, WorkflowVersion,
};
use storage_wiring::layers::{LayerConfig, RetryPolicy, TimeoutPolicy};

/// Fails every other call with `Unavailable`, starting with the first; or, when
/// `slow`, answers every call after a pause longer than the timeouts tested.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn WorkflowStore>,
    calls: AtomicU32,
    slow: bool,
}

impl Flaky {
    async fn trip(&self) -> Result<()> {
        if self.slow {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            return Ok(());
        }
        if self.calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            return Err(Error::unavailable("connection reset"));
        }
        Ok(())
    }
}

#[async_trait]
impl WorkflowStore for Flaky {
    async fn put(&self, t: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.trip().await?;
        self.inner.put(t, new).await
    }
    async fn get(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<WorkflowVersion> {
        self.trip().await?;
        self.inner.get(t, id, v).await
    }
    async fn latest(&self, t: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        self.trip().await?;
        self.inner.latest(t, id).await
    }
    async fn versions(&self, t: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        self.trip().await?;
        self.inner.versions(t, id).await
    }
    async fn lineage(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<Vec<VersionMeta>> {
        self.trip().await?;
        self.inner.lineage(t, id, v).await
    }
    async fn list(&self, t: &TenantId, p: PageRequest) -> Result<Page<VersionMeta>> {
        self.trip().await?;
        self.inner.list(t, p).await
    }
    async fn delete(&self, t: &TenantId, id: &WorkflowId, v: u32) -> Result<()> {
        self.trip().await?;
        self.inner.delete(t, id, v).await
    }
}

fn flaky_set(slow: bool) -> StoreSet {
    let mut set = adapter_memory::MemoryStore::default().store_set();
    set.workflows = Arc::new(Flaky {
        inner: set.workflows.clone(),
        calls: AtomicU32::new(0),
        slow,
    });
    set
}

fn layered(retry: bool) -> StoreSet {
    LayerConfig {
        retry: retry.then_some(RetryPolicy {
            attempts: 3,
            base_ms: 1,
            max_ms: 5,
        }),
        ..LayerConfig::default()
    }
    .apply(flaky_set(false), &[])
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

#[tokio::test]
async fn spent_retries_leave_the_error_persistent(
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let set = LayerConfig {
        retry: Some(RetryPolicy {
            attempts: 1,
            base_ms: 1,
            max_ms: 1,
        }),
        ..LayerConfig::default()
    }
    .apply(flaky_set(false), &[]);
    let e = set
        .workflows
        .latest(&TenantId::new("acme")?, &WorkflowId::new("etl")?)
        .await
        .err()
        .ok_or("no failure")?;
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert!(
        !e.is_retryable(),
        "an outer retry would multiply the attempts"
    );
    Ok(())
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried(
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("etl")?);
    let timeout = TimeoutPolicy {
        call_ms: 50,
        ..TimeoutPolicy::default()
    };
    let set = LayerConfig {
        timeout: Some(timeout.clone()),
        ..LayerConfig::default()
    }
    .apply(flaky_set(true), &[]);
    let started = std::time::Instant::now();
    let e = set
        .workflows
        .latest(&t, &wf)
        .await
        .err()
        .ok_or("no timeout")?;
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "a timeout is temporary: {e:?}");
    assert!(e.to_string().contains("50 ms"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_millis(250));
    // Inside a retry layer, each attempt is limited and the retries are spent.
    let set = LayerConfig {
        timeout: Some(timeout),
        retry: Some(RetryPolicy {
            attempts: 2,
            base_ms: 1,
            max_ms: 1,
        }),
        ..LayerConfig::default()
    }
    .apply(flaky_set(true), &[]);
    let e = set
        .workflows
        .latest(&t, &wf)
        .await
        .err()
        .ok_or("no timeout")?;
    assert_eq!(e.status(), ErrorStatus::Persistent, "{e:?}");
    Ok(())
}
