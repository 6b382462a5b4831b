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

/// With `archive: s3://bucket/prefix/`, a round archives what it prunes as an object
/// under the prefix (one per tenant), and a round that prunes nothing writes nothing.
#[tokio::test]
async fn retention_archives_into_a_bucket_before_it_deletes(
) -> Result<(), Box<dyn std::error::Error>> {
    use storage_contract::servers::server_env as need;
    let (endpoint, bucket) = (
        need("FLOWSTORE_TEST_S3_ENDPOINT")?,
        need("FLOWSTORE_TEST_S3_BUCKET")?,
    );
    // The archive's object store comes from the `AWS_*` variables, as in production.
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let prefix = format!("s3://{bucket}/retention/{}/", RunId::generate());
    let config = StorageConfig::from_yaml(&format!(
        "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ncredentials: {{ type: memory }}\nqueue: {{ type: memory }}\ndocuments: {{ type: memory }}\nretention:\n  every_secs: 1\n  policy: {{ max_age: 864000 }}\n  tenants: [acme]\n  archive: '{prefix}'\n",
    ))?;
    let s = Storage::build(&config).await?;
    let t = TenantId::new("acme")?;
    for r in s
        .tenant(t.clone())
        .store_runs(vec![run("old-1", 30)?, run("old-2", 20)?, run("new", 1)?])
        .await?
    {
        r?;
    }
    let task = s.start_retention().ok_or("no task was started")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(task);
    assert_eq!(ids(&s, &t).await?, ["new"]);
    let objects =
        storage_objects::Bucket::open(&storage_objects::ObjectStoreConfig::from_env(), &bucket)?;
    let archives = objects
        .list(&storage_objects::ObjectLocation::parse(&prefix)?)
        .await?;
    assert_eq!(
        archives.len(),
        1,
        "one archive for the round that pruned: {archives:?}"
    );
    let object = objects
        .get(&archives[0].0)
        .await?
        .ok_or("the archive vanished")?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&object.bytes[..]),
        &mut text,
    )?;
    let archived: Vec<CompleteRun> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut names: Vec<String> = archived.iter().map(|r| r.run.run_id.to_string()).collect();
    names.sort();
    assert_eq!(names, ["old-1", "old-2"]);
    Ok(())
}
