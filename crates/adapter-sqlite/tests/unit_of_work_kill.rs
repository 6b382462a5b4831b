//! T3 under a real crash: a process running units of work (a document, a run and a
//! job each) is SIGKILLed at random moments, 30 times. Afterwards every unit it saw
//! committed is there whole, and no unit is there in part: the tenant holds as many
//! runs and jobs as documents, each named after its document.

use adapter_sqlite::SqliteStore;
use serde_json::json;
use storage_ports::TransactionsExt as _;
use storage_ports::{
    CollectionName, DocumentFilter, DocumentId, DocumentStore, Error, JobId, JobQueue, NewJob,
    NewRun, Operations, PageRequest, QueueName, RunId, RunStore, TenantId, Timestamp, WorkflowId,
};

const ROLE: &str = "FLOWSTORE_SQLITE_UNIT_KILL_WRITER";
const TEST: &str = "t3_a_killed_process_leaves_no_part_of_a_unit";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn names() -> Result<(TenantId, CollectionName, QueueName), Error> {
    Ok((
        TenantId::new("acme")?,
        CollectionName::new("executions")?,
        QueueName::new("runs")?,
    ))
}

fn run_of(doc: &DocumentId) -> Result<RunId, Error> {
    RunId::new(format!("run-{doc}"))
}

fn job_of(doc: &DocumentId) -> Result<JobId, Error> {
    JobId::new(format!("job-{doc}"))
}

/// The writer: units until killed, each acknowledged once committed.
async fn write_units(store: SqliteStore) -> TestResult {
    let (t, c, q) = names()?;
    loop {
        let doc = DocumentId::generate();
        let (c2, q2, d2) = (c.clone(), q.clone(), doc.clone());
        store
            .unit_of_work(&t, move |tx| {
                Box::pin(async move {
                    tx.create_document(&c2, Some(d2.clone()), json!({"status": "queued"}))
                        .await?;
                    tx.start_run(NewRun {
                        run_id: run_of(&d2)?,
                        workflow_id: WorkflowId::new("nightly")?,
                        version: 1,
                        inputs: json!({"execution": d2.as_str()}),
                        started_at: Timestamp::now(),
                    })
                    .await?;
                    tx.enqueue(&q2, NewJob::new(json!({})).with_id(job_of(&d2)?))
                        .await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        storage_contract::crash::ack(doc.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_a_killed_process_leaves_no_part_of_a_unit() -> TestResult {
    if let Ok(dir) = std::env::var(ROLE) {
        let store = SqliteStore::open(std::path::Path::new(&dir).join("store.db")).await?;
        return write_units(store).await;
    }
    let dir =
        std::env::temp_dir().join(format!("flowstore-sqlite-unit-kill-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let acked = storage_contract::crash::kill_rounds(
        TEST,
        ROLE,
        &dir,
        30,
        std::time::Duration::from_millis(30),
        std::time::Duration::from_millis(150),
    )?;
    assert!(!acked.is_empty(), "no unit committed in 30 rounds");
    let (t, c, q) = names()?;
    let store = SqliteStore::open(dir.join("store.db")).await?;
    let mut docs = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let p = store
            .list(&t, &c, &DocumentFilter::all(), page.clone())
            .await?;
        docs.extend(p.items.into_iter().map(|d| d.id));
        match p.next {
            Some(cursor) => page = PageRequest::after(500, cursor),
            None => break,
        }
    }
    for id in &acked {
        assert!(
            docs.iter().any(|d| d.as_str() == id),
            "committed unit {id} lost its document"
        );
    }
    for d in &docs {
        RunStore::get(&store, &t, &run_of(d)?).await?;
        store.job(&t, &q, &job_of(d)?).await?;
    }
    let stats = Operations::stats(&store, &t).await?;
    assert_eq!(
        (stats.documents, stats.runs, stats.jobs),
        (docs.len() as u64, docs.len() as u64, docs.len() as u64),
        "a unit is there in part"
    );
    eprintln!(
        "{} units acknowledged across 30 SIGKILLed writers, {} stored, none in part",
        acked.len(),
        docs.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
