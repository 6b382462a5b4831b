//! Background retention from config: the task started by `Storage::start_retention`
//! prunes what the policy selects in every tenant the store lists, and the finished
//! jobs past their `keep_for`, keeps the rest, and stops when dropped.

use std::time::Duration;

use serde_json::json;
use storage_ports::{
    CompleteRun, Dequeue, ErrorKind, JobQueueExt as _, NewJob, NewRun, QueueName, Run, RunId,
    RunOutcome, RunQuery, TenantId, Timestamp, WorkflowId,
};
use storage_wiring::{Storage, StorageConfig};

fn run(id: &str, days_ago: i64) -> Result<CompleteRun, storage_ports::Error> {
    let at = Timestamp::from_micros(Timestamp::now().as_micros() - days_ago * 86_400_000_000);
    let mut run = Run::started(NewRun {
        run_id: RunId::new(id)?,
        workflow_id: WorkflowId::new("etl")?,
        version: 1,
        inputs: json!({}),
        started_at: at,
    });
    run.apply(RunOutcome::succeeded(json!(1), at));
    Ok(CompleteRun {
        run,
        steps: Vec::new(),
    })
}

async fn ids(s: &Storage, t: &TenantId) -> Result<Vec<String>, storage_ports::Error> {
    let page = s
        .tenant(t.clone())
        .query_runs(RunQuery {
            limit: 100,
            ..RunQuery::default()
        })
        .await?;
    Ok(page.items.iter().map(|r| r.run_id.to_string()).collect())
}

#[tokio::test]
async fn the_configured_task_prunes_every_tenant() -> Result<(), Box<dyn std::error::Error>> {
    let config = StorageConfig::from_yaml(
        "workflows: { type: memory }\nruns: { type: memory }\nmetrics: { type: memory }\ncredentials: { type: memory }\nqueue: { type: memory }\ndocuments: { type: memory }\nretention:\n  every_secs: 1\n  policy: { max_age: 864000 }\n",
    )?;
    let s = Storage::build(&config).await?;
    let (a, b) = (TenantId::new("a")?, TenantId::new("b")?);
    for t in [&a, &b] {
        for r in s
            .tenant(t.clone())
            .store_runs(vec![run("old", 30)?, run("new", 1)?])
            .await?
        {
            r?;
        }
    }
    let (queue, q) = (&s.ports().queue, QueueName::new("mail")?);
    let mut kept = Vec::new();
    for keep in [Duration::from_millis(1), Duration::from_secs(3600)] {
        queue
            .enqueue(&a, &q, NewJob::new(json!(1)).with_keep_for(keep))
            .await?;
        let leased = queue
            .dequeue(&a, &q, Dequeue::batch(1, Duration::from_secs(60)))
            .await?;
        let lease = &leased.first().ok_or("nothing dequeued")?.lease;
        queue.ack(&a, lease).await?;
        kept.push(lease.job_id.clone());
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let task = s.start_retention().ok_or("no task was started")?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ids(&s, &a).await?, ["new"], "the first round runs at once");
    assert_eq!(ids(&s, &b).await?, ["new"]);
    let gone = queue.job(&a, &q, &kept[0]).await.map(|_| ()).err();
    assert_eq!(
        gone.map(|e| e.kind()),
        Some(ErrorKind::NotFound),
        "a job past its keep_for stays"
    );
    assert!(queue.job(&a, &q, &kept[1]).await?.finished_at.is_some());
    drop(task);
    for r in s
        .tenant(a.clone())
        .store_runs(vec![run("old-again", 30)?])
        .await?
    {
        r?;
    }
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(ids(&s, &a).await?.len(), 2, "a dropped task must stop");
    Ok(())
}
