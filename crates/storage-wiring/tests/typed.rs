//! `Collection<T>` and `TypedQueue<T>` on a real SQLite file: values round trip as
//! their type, and a stored value that no longer decodes is `CorruptData` naming it,
//! skipped in listings and sent to the dead letters from the queue, never a panic.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use storage_ports::{
    CollectionName, Dequeue, DocumentFilter, ErrorKind, PageRequest, QueueName, TenantId,
};
use storage_wiring::{Storage, StorageConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    name: String,
    steps: Vec<String>,
}

async fn sqlite() -> Result<(Storage, std::path::PathBuf), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-typed-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("f.db");
    let yaml = format!(
        "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ncredentials: {{ type: memory }}\nqueue: {{ type: sqlite, path: {p} }}\ndocuments: {{ type: sqlite, path: {p} }}\n",
        p = db.display()
    );
    Ok((
        Storage::build(&StorageConfig::from_yaml(&yaml)?).await?,
        dir,
    ))
}

#[tokio::test]
async fn a_collection_reads_back_its_type_and_reports_what_does_not_decode(
) -> Result<(), Box<dyn std::error::Error>> {
    let (s, dir) = sqlite().await?;
    let (t, c) = (TenantId::new("acme")?, CollectionName::new("plans")?);
    let plans = s.ports().collection::<Plan>(&t, &c);
    let plan = Plan {
        name: "nightly".into(),
        steps: vec!["fetch".into(), "store".into()],
    };
    let created = plans.create(None, &plan).await?;
    assert_eq!(plans.get(&created.id).await?.value, plan);
    let changed = Plan {
        steps: vec!["fetch".into()],
        ..plan.clone()
    };
    let replaced = plans
        .replace(&created.id, created.revision, &changed)
        .await?;
    assert_eq!(replaced.revision, created.revision + 1);

    // Another writer stores a body that is not a Plan.
    let odd = s
        .ports()
        .documents
        .create(&t, &c, None, json!({"name": 7}))
        .await?;
    let err = plans
        .get(&odd.id)
        .await
        .map(|_| ())
        .err()
        .ok_or("decoded a non-plan")?;
    assert_eq!(err.kind(), ErrorKind::CorruptData);
    assert!(err.to_string().contains(odd.id.as_str()), "{err}");
    let page = plans
        .list(&DocumentFilter::all(), PageRequest::first(10))
        .await?;
    assert_eq!(page.items.len(), 1, "the plan is listed");
    assert_eq!(page.items[0].value, changed);
    assert_eq!(page.undecodable.len(), 1, "the odd document is reported");
    plans.delete(&created.id, Some(replaced.revision)).await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[tokio::test]
async fn a_typed_queue_delivers_its_type_and_dead_letters_what_does_not_decode(
) -> Result<(), Box<dyn std::error::Error>> {
    let (s, dir) = sqlite().await?;
    let (t, q) = (TenantId::new("acme")?, QueueName::new("plans")?);
    let queue = s.ports().typed_queue::<Plan>(&t, &q);
    let plan = Plan {
        name: "hourly".into(),
        steps: vec![],
    };
    let first = queue.enqueue(&plan).await?;
    s.ports()
        .queue
        .enqueue_batch(&t, &q, vec![storage_ports::NewJob::new(json!([1, 2]))])
        .await?;
    let batch = queue
        .dequeue(Dequeue::batch(10, Duration::from_secs(60)))
        .await?;
    assert_eq!(batch.jobs.len(), 1);
    assert_eq!(batch.jobs[0].payload, plan);
    assert_eq!(batch.jobs[0].lease.job_id, first.job_id);
    assert_eq!(batch.undecodable.len(), 1);
    assert_eq!(batch.undecodable[0].kind(), ErrorKind::CorruptData);
    queue.ack(&batch.jobs[0].lease).await?;
    let dead = s.ports().queue.dead(&t, &q, 10).await?;
    assert_eq!(dead.len(), 1, "the undecodable job is a dead letter");
    assert!(
        dead[0].last_error.contains("does not decode"),
        "{}",
        dead[0].last_error
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
