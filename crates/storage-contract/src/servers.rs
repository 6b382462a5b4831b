//! Checks for server backends beyond the per-behaviour suite, shared by every adapter
//! that talks to a server: isolation with identical ids in every port, and recovery
//! from a server restart in the middle of a workload (R2).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::{
    CollectionName, CompleteRun, Dequeue, DocumentId, ErrorKind, JobId, NewJob, NewRun,
    NewWorkflowVersion, QueueName, Run, RunId, RunOutcome, RunStore, StoreSet, TenantId, Timestamp,
    WorkflowId,
};

use crate::check::Failure;

/// The variable `name`, or an error that says how to get the servers it names.
///
/// # Errors
/// When it is not set.
pub fn server_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` and export what it prints")
    })
}

/// A fresh random tenant.
///
/// # Errors
/// Never in practice (generated ids are valid).
pub fn fresh_tenant() -> Result<TenantId, storage_ports::Error> {
    TenantId::new(format!("t{}", RunId::generate()))
}

/// A succeeded run `id` of `workflow` with inputs `{"i": i}` and no steps.
///
/// # Errors
/// An invalid id.
pub fn finished_run(id: &str, workflow: &str, i: u64) -> Result<CompleteRun, storage_ports::Error> {
    let mut run = Run::started(NewRun {
        run_id: RunId::new(id)?,
        workflow_id: WorkflowId::new(workflow)?,
        version: 1,
        inputs: json!({"i": i}),
        started_at: Timestamp::now(),
    });
    run.apply(RunOutcome::succeeded(json!(i), Timestamp::now()));
    Ok(CompleteRun {
        run,
        steps: Vec::new(),
    })
}

/// Two tenants store the same ids in every port (workflow, run, job, document); each
/// reads back only its own, and a delete in one leaves the other's.
///
/// # Errors
/// A `Failure` naming the port that mixed tenants, or a backend error.
pub async fn identical_ids_stay_apart(set: &StoreSet) -> Result<(), Failure> {
    let (a, b) = (fresh_tenant()?, fresh_tenant()?);
    let (wf, q, c) = (
        WorkflowId::new("same")?,
        QueueName::new("same")?,
        CollectionName::new("same")?,
    );
    let doc = DocumentId::new("same")?;
    for (t, i) in [(&a, 1_u64), (&b, 2)] {
        set.workflows
            .put(t, NewWorkflowVersion::next(wf.clone(), json!({"i": i})))
            .await?;
        set.runs
            .store_complete(t, finished_run("same", "iso", i)?)
            .await?;
        set.queue
            .enqueue(t, &q, NewJob::new(json!(i)).with_id(JobId::new("same")?))
            .await?;
        set.documents
            .create(t, &c, Some(doc.clone()), json!({"i": i}))
            .await?;
    }
    let run = RunId::new("same")?;
    let expect = |what: &str, got: &serde_json::Value, want: serde_json::Value| {
        if *got == want {
            Ok(())
        } else {
            Err(Failure(format!(
                "{what}: tenant read {got}, expected {want}"
            )))
        }
    };
    expect(
        "run",
        &set.runs.get(&a, &run).await?.inputs,
        json!({"i": 1}),
    )?;
    expect(
        "run",
        &set.runs.get(&b, &run).await?.inputs,
        json!({"i": 2}),
    )?;
    expect(
        "workflow",
        &set.workflows.get(&b, &wf, 1).await?.definition,
        json!({"i": 2}),
    )?;
    expect(
        "document",
        &set.documents.get(&a, &c, &doc).await?.body,
        json!({"i": 1}),
    )?;
    let jobs = set
        .queue
        .dequeue(&a, &q, Dequeue::batch(10, Duration::from_secs(30)))
        .await?;
    if jobs.len() != 1 {
        return Err(Failure(format!(
            "tenant a dequeued {} jobs, expected its 1",
            jobs.len()
        )));
    }
    expect("job", &jobs[0].payload, json!(1))?;
    set.runs.delete(&a, &run).await?;
    expect(
        "run after the other tenant's delete",
        &set.runs.get(&b, &run).await?.inputs,
        json!({"i": 2}),
    )?;
    Ok(())
}

/// What [`restart_under_load`] saw.
#[derive(Debug, Clone, Copy)]
pub struct RestartReport {
    /// Writes acknowledged around the restart.
    pub acknowledged: usize,
    /// Writes that failed with a retryable error and were retried.
    pub retried: usize,
}

/// R2: a writer stores whole runs for 5 s; after 1.5 s `restart_script` restarts the
/// server. Every call must succeed or fail retryably (a retry of a write that had
/// committed finds its id taken), the same store must work again without being
/// reopened, and every acknowledged run must be readable afterwards.
///
/// # Errors
/// A `Failure` naming the broken property.
pub async fn restart_under_load(
    runs: Arc<dyn RunStore>,
    restart_script: &str,
) -> Result<RestartReport, Failure> {
    let t = fresh_tenant()?;
    let writer = {
        let (runs, t) = (runs.clone(), t.clone());
        tokio::spawn(async move {
            let (mut acked, mut retried) = (Vec::new(), 0_usize);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut i = 0_u64;
            while tokio::time::Instant::now() < deadline {
                i += 1;
                let id = format!("r{i}");
                match runs
                    .store_complete(&t, finished_run(&id, "restart", i)?)
                    .await
                {
                    Ok(()) => acked.push(id),
                    Err(e) if e.is_retryable() => {
                        retried += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Failure(format!(
                            "non-retryable error during the restart: {e}"
                        )))
                    }
                }
            }
            Ok::<_, Failure>((acked, retried))
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let out = std::process::Command::new("sh")
        .arg(restart_script)
        .output()
        .map_err(|e| Failure(format!("cannot run the restart script: {e}")))?;
    if !out.status.success() {
        return Err(Failure(format!(
            "the restart script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let (acked, retried) = writer
        .await
        .map_err(|e| Failure(format!("the writer panicked: {e}")))??;
    if acked.len() < 20 {
        return Err(Failure(format!(
            "too few writes went through: {}",
            acked.len()
        )));
    }
    let mut missing = Vec::new();
    for id in &acked {
        if runs.get(&t, &RunId::new(id.clone())?).await.is_err() {
            missing.push(id.clone());
        }
    }
    if !missing.is_empty() {
        return Err(Failure(format!(
            "{} acknowledged runs are gone after the restart, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        )));
    }
    runs.store_complete(&t, finished_run("after", "restart", 0)?)
        .await?;
    Ok(RestartReport {
        acknowledged: acked.len(),
        retried,
    })
}
