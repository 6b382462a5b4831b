//! W10 on Redis: a run whose stored head is damaged (a hand-run HSET, a bad restore)
//! is skipped by queries, which still list the rest of the tenant; reading it by id
//! is corrupt data.

use adapter_redis::RedisStore;
use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::{ErrorKind, NewRun, RunId, RunQuery, RunStore, Timestamp, WorkflowId};

#[tokio::test]
async fn w10_a_damaged_run_is_skipped_by_queries_and_corrupt_when_read(
) -> Result<(), Box<dyn std::error::Error>> {
    let url = server_env("FLOWSTORE_TEST_REDIS_URL")?;
    let store = RedisStore::connect(&url).await?;
    let t = fresh_tenant()?;
    let mut ids = Vec::new();
    for wf in ["a", "b", "c"] {
        let run = NewRun {
            run_id: RunId::generate(),
            workflow_id: WorkflowId::new(wf)?,
            version: 1,
            inputs: json!({"wf": wf}),
            started_at: Timestamp::now(),
        };
        ids.push(run.run_id.clone());
        store.start(&t, run).await?;
    }
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("HSET")
        .arg(format!("flowstore:{{{t}}}:run:{}", ids[1]))
        .arg("head")
        .arg("not json {")
        .exec_async(&mut conn)
        .await?;
    let page = store
        .query(
            &t,
            RunQuery {
                limit: 10,
                ..RunQuery::default()
            },
        )
        .await?;
    let mut listed: Vec<_> = page.items.iter().map(|r| r.run_id.clone()).collect();
    listed.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(listed, want, "the readable runs");
    let e = RunStore::get(&store, &t, &ids[1])
        .await
        .err()
        .ok_or("the damaged run was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    Ok(())
}
