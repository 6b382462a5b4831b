//! W10 on PostgreSQL: rows changed behind flowstore's back (a hand-run UPDATE, a bad
//! restore) never break the rest of the tenant (storage_contract::damage). The columns
//! are typed, so the damage is what a type allows: a negative count, a JSON value of
//! the wrong shape.

use adapter_postgres::{Config, PostgresStore};
use storage_contract::damage::{damaged_records_are_skipped, Damager, Record};
use storage_contract::servers::server_env;
use storage_ports::TenantId;

/// Damages rows with plain SQL, in flowstore's schema.
struct SqlDamager(sqlx::PgPool);

#[async_trait::async_trait]
impl Damager for SqlDamager {
    async fn damage(&self, t: &TenantId, record: &Record) -> Result<bool, String> {
        const SHAPE: &str = "\"not the stored shape\"";
        let q = match record {
            Record::Run(r) => sqlx::query("UPDATE flowstore.flowstore_runs SET version = -1 WHERE tenant = $1 AND run_id = $2")
                .bind(t.as_str()).bind(r.as_str()),
            Record::Event(r, seq) => sqlx::query("UPDATE flowstore.flowstore_run_events SET kind = $3::jsonb WHERE tenant = $1 AND run_id = $2 AND seq = $4")
                .bind(t.as_str()).bind(r.as_str()).bind(SHAPE).bind(i64::try_from(*seq).map_err(|e| e.to_string())?),
            Record::Job(q, j) => sqlx::query("UPDATE flowstore.flowstore_jobs SET attempts = -5 WHERE tenant = $1 AND queue = $2 AND job_id = $3")
                .bind(t.as_str()).bind(q.as_str()).bind(j.as_str()),
            Record::Document(c, id) => sqlx::query("UPDATE flowstore.flowstore_documents SET revision = -1 WHERE tenant = $1 AND collection = $2 AND id = $3")
                .bind(t.as_str()).bind(c.as_str()).bind(id.as_str()),
            Record::MetricRecord(r) => sqlx::query("UPDATE flowstore.flowstore_metric_records SET record = $3::jsonb WHERE tenant = $1 AND run_id = $2")
                .bind(t.as_str()).bind(r.as_str()).bind(SHAPE),
            Record::Pattern(wf, kind, key) => sqlx::query("UPDATE flowstore.flowstore_patterns SET pattern = $5::jsonb WHERE tenant = $1 AND workflow_id = $2 AND kind = $3 AND key = $4")
                .bind(t.as_str()).bind(wf.as_str()).bind(kind.as_str()).bind(key.as_str()).bind(SHAPE),
        };
        let done = q.execute(&self.0).await.map_err(|e| e.to_string())?;
        if done.rows_affected() != 1 {
            return Err(format!("{record:?}: no such row"));
        }
        Ok(true)
    }
}

#[tokio::test]
async fn w10_a_damaged_row_of_any_kind_is_skipped_and_corrupt_when_read(
) -> Result<(), Box<dyn std::error::Error>> {
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let store = PostgresStore::connect(&Config::new(url.clone())).await?;
    let damager = SqlDamager(sqlx::PgPool::connect(&url).await?);
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
    Ok(())
}
