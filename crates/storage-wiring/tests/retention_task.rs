//! Background retention from config: the task started by `Storage::start_retention`
//! prunes what the policy selects in every tenant the store lists, keeps the rest, and
//! stops when dropped.

use std::time::Duration;

use serde_json::json;
use storage_ports::{
    CompleteRun, NewRun, Run, RunId, RunOutcome, RunQuery, TenantId, Timestamp, WorkflowId,
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
    let task = s.start_retention().ok_or("no task was started")?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ids(&s, &a).await?, ["new"], "the first round runs at once");
    assert_eq!(ids(&s, &b).await?, ["new"]);
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
