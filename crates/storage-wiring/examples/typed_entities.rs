//! Typed entities and typed jobs on the embedded default (SQLite in a directory of
//! its own): a host stores its `Execution`s in a `Collection<Execution>` and hands
//! `RunExecution` jobs to a worker through a `TypedQueue<RunExecution>`, without
//! touching `serde_json::Value`.
//!
//! ```sh
//! cargo run -p storage-wiring --example typed_entities
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_ports::{CollectionName, Dequeue, DocumentId, QueueName, TenantId};
use storage_wiring::{Storage, StorageConfig};

/// The host's own entity: one execution of a test plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Execution {
    plan: String,
    status: String,
    results: Vec<String>,
}

/// The job that runs one execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunExecution {
    execution: DocumentId,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-example-{}",
        storage_ports::RunId::generate()
    ));
    let db = dir.join("flowstore.db");
    let config = StorageConfig::from_yaml(&format!(
        "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ncredentials: {{ type: memory }}\nqueue: {{ type: sqlite, path: {p} }}\ndocuments: {{ type: sqlite, path: {p} }}\n",
        p = db.display()
    ))?;
    std::fs::create_dir_all(&dir)?;
    let storage = Storage::build(&config).await?;
    let tenant = TenantId::new("acme")?;
    let executions = storage
        .ports()
        .collection::<Execution>(&tenant, &CollectionName::new("executions")?);
    let jobs = storage
        .ports()
        .typed_queue::<RunExecution>(&tenant, &QueueName::new("executions")?);

    // The host: record the execution, then ask for it to run.
    let created = executions
        .create(
            None,
            &Execution {
                plan: "checkout-smoke".into(),
                status: "queued".into(),
                results: Vec::new(),
            },
        )
        .await?;
    jobs.enqueue(&RunExecution {
        execution: created.id.clone(),
    })
    .await?;
    println!("queued execution {}", created.id);

    // A worker: lease the job, run it, record the outcome, acknowledge.
    let batch = jobs.dequeue(Dequeue::one(Duration::from_secs(30))).await?;
    for bad in &batch.undecodable {
        eprintln!("skipped a job: {bad}");
    }
    for job in batch.jobs {
        let current = executions.get(&job.payload.execution).await?;
        let done = Execution {
            status: "passed".into(),
            results: vec!["login ok".into(), "checkout ok".into()],
            ..current.value
        };
        executions
            .replace(&current.id, current.revision, &done)
            .await?;
        jobs.ack(&job.lease).await?;
        println!(
            "ran execution {} (attempt {} of {})",
            current.id, job.attempt, job.max_attempts
        );
    }

    let finished = executions.get(&created.id).await?;
    println!(
        "execution {}: {} {:?} (revision {})",
        finished.id, finished.value.status, finished.value.results, finished.revision
    );
    assert_eq!(finished.value.status, "passed");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
