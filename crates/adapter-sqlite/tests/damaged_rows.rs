//! Rows changed behind flowstore's back (a hand-run UPDATE, a bad restore): what the
//! adapter reads from them is corrupt data, never a hang or a panic.

use adapter_sqlite::SqliteStore;
use serde_json::json;
use storage_contract::damage::{damaged_records_are_skipped, Damager, Record};
use storage_ports::{ErrorKind, NewWorkflowVersion, TenantId, WorkflowId, WorkflowStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// W5: a parent changed to the row's own version would loop the recursive walk; the
/// walk follows only older parents and ends with a corrupt-data error.
#[tokio::test]
async fn w5_a_parent_changed_into_a_loop_is_corrupt_data() -> TestResult {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-loop-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("flowstore.db");
    let store = SqliteStore::open(&file).await?;
    let (t, wf) = (TenantId::new("acme")?, WorkflowId::new("etl")?);
    store
        .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 1})))
        .await?;
    store
        .put(
            &t,
            NewWorkflowVersion::next(wf.clone(), json!({"n": 2})).with_parent(1),
        )
        .await?;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    sqlx::query("UPDATE flowstore_workflow_versions SET parent = 2 WHERE version = 2")
        .execute(&pool)
        .await?;
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.lineage(&t, &wf, 2),
    )
    .await
    .map_err(|_| "lineage of a looped row did not end")?
    .err()
    .ok_or("a looped lineage was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    assert!(e.to_string().contains("parent 2"), "{e}");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Damages rows with plain SQL on the same database file.
struct SqlDamager(sqlx::SqlitePool);

#[async_trait::async_trait]
impl Damager for SqlDamager {
    async fn damage(&self, t: &TenantId, record: &Record) -> Result<bool, String> {
        const BAD: &str = "not json {";
        let q = match record {
            Record::Run(r) => sqlx::query("UPDATE flowstore_runs SET inputs = ?1 WHERE tenant = ?2 AND run_id = ?3")
                .bind(BAD).bind(t.as_str()).bind(r.as_str()),
            Record::Event(r, seq) => sqlx::query("UPDATE flowstore_run_events SET kind = ?1 WHERE tenant = ?2 AND run_id = ?3 AND seq = ?4")
                .bind(BAD).bind(t.as_str()).bind(r.as_str()).bind(i64::try_from(*seq).map_err(|e| e.to_string())?),
            Record::Job(queue, job) => sqlx::query("UPDATE flowstore_jobs SET payload = ?1 WHERE tenant = ?2 AND queue = ?3 AND job_id = ?4")
                .bind(BAD).bind(t.as_str()).bind(queue.as_str()).bind(job.as_str()),
            Record::Document(c, id) => sqlx::query("UPDATE flowstore_documents SET body = ?1 WHERE tenant = ?2 AND collection = ?3 AND id = ?4")
                .bind(BAD).bind(t.as_str()).bind(c.as_str()).bind(id.as_str()),
            Record::MetricRecord(r) => sqlx::query("UPDATE flowstore_metric_records SET record = ?1 WHERE tenant = ?2 AND run_id = ?3")
                .bind(BAD).bind(t.as_str()).bind(r.as_str()),
            Record::Pattern(wf, kind, key) => sqlx::query("UPDATE flowstore_patterns SET pattern = ?1 WHERE tenant = ?2 AND workflow_id = ?3 AND kind = ?4 AND key = ?5")
                .bind(BAD).bind(t.as_str()).bind(wf.as_str()).bind(kind.as_str()).bind(key.as_str()),
        };
        let done = q.execute(&self.0).await.map_err(|e| e.to_string())?;
        if done.rows_affected() != 1 {
            return Err(format!("{record:?}: no such row"));
        }
        Ok(true)
    }
}

/// W10 for every kind of record a SQLite file holds (storage_contract::damage).
#[tokio::test]
async fn w10_a_damaged_row_of_any_kind_is_skipped_and_corrupt_when_read() -> TestResult {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-sqlite-damaged-{}",
        storage_ports::RunId::generate()
    ));
    let file = dir.join("flowstore.db");
    let store = SqliteStore::open(&file).await?;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display())).await?;
    let damager = SqlDamager(pool);
    let checked = damaged_records_are_skipped(&store.store_set(), &damager).await?;
    assert_eq!(
        checked,
        [
            "run",
            "event",
            "job",
            "document",
            "metric record",
            "pattern"
        ]
    );
    damager.0.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
