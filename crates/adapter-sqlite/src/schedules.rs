//! Schedules in SQLite (Q19): one row per schedule, the spec as JSON. Writes go
//! through the store's write gate, so the compare-and-set of `advance_schedule` is one
//! `UPDATE ... WHERE next_at = ?`, and no two writers interleave.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use storage_ports::rules::schedule::{check_due_limit, no_schedule, stored};
use storage_ports::{
    DueSchedules, Error, NewSchedule, Result, Schedule, ScheduleName, ScheduleStore, TenantId,
    Timestamp,
};

use crate::error::SqlxResultExt;
use crate::SqliteStore;

fn schedule_of(row: &SqliteRow) -> Result<Schedule> {
    let spec: String = row.try_get("spec").op("schedules.decode")?;
    Ok(Schedule {
        spec: serde_json::from_str(&spec)
            .map_err(|e| Error::corrupt(format!("stored schedule cannot be read: {e}")))?,
        anchor: Timestamp::from_micros(row.try_get("anchor").op("schedules.decode")?),
        next_at: Timestamp::from_micros(row.try_get("next_at").op("schedules.decode")?),
        paused: row.try_get("paused").op("schedules.decode")?,
    })
}

/// Reads the rows, leaving out (and logging) the ones that do not decode.
fn readable(tenant: &TenantId, rows: &[SqliteRow]) -> Result<Vec<Schedule>> {
    let (items, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(schedule_of))?;
    for e in damaged {
        tracing::warn!(%tenant, error = %e, "a damaged schedule is left out");
    }
    Ok(items)
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule> {
        let _gate = self.write_gate().await;
        let paused: Option<bool> = sqlx::query_scalar(
            "SELECT paused FROM flowstore_schedules WHERE tenant = ?1 AND name = ?2",
        )
        .bind(tenant.as_str())
        .bind(schedule.name.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("queue.put_schedule")?;
        let mut kept = stored(schedule, self.now(), None)?;
        kept.paused = paused.unwrap_or(false);
        let spec = serde_json::to_string(&kept.spec)
            .map_err(|e| Error::invalid_input(format!("schedule cannot be stored: {e}")))?;
        sqlx::query("INSERT INTO flowstore_schedules (tenant, name, spec, anchor, next_at, paused) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant, name) DO UPDATE SET spec = excluded.spec, anchor = excluded.anchor, next_at = excluded.next_at")
            .bind(tenant.as_str())
            .bind(kept.spec.name.as_str())
            .bind(spec)
            .bind(kept.anchor.as_micros())
            .bind(kept.next_at.as_micros())
            .bind(kept.paused)
            .execute(&self.pool)
            .await
            .op("queue.put_schedule")?;
        Ok(kept)
    }

    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>> {
        let rows = sqlx::query(
            "SELECT spec, anchor, next_at, paused FROM flowstore_schedules WHERE tenant = ?1 ORDER BY name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .op("queue.schedules")?;
        readable(tenant, &rows)
    }

    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE flowstore_schedules SET paused = ?1 WHERE tenant = ?2 AND name = ?3",
        )
        .bind(paused)
        .bind(tenant.as_str())
        .bind(name.as_str())
        .execute(&self.pool)
        .await
        .op("queue.set_schedule_paused")?;
        if done.rows_affected() == 0 {
            return Err(no_schedule(name));
        }
        Ok(())
    }

    async fn delete_schedule(&self, tenant: &TenantId, name: &ScheduleName) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query("DELETE FROM flowstore_schedules WHERE tenant = ?1 AND name = ?2")
            .bind(tenant.as_str())
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .op("queue.delete_schedule")?;
        if done.rows_affected() == 0 {
            return Err(no_schedule(name));
        }
        Ok(())
    }

    async fn due_schedules(&self, tenant: &TenantId, limit: usize) -> Result<DueSchedules> {
        check_due_limit(limit)?;
        let now = self.now();
        let rows = sqlx::query("SELECT spec, anchor, next_at, paused FROM flowstore_schedules INDEXED BY flowstore_schedules_due WHERE tenant = ?1 AND paused = 0 AND next_at <= ?2 ORDER BY next_at LIMIT ?3")
            .bind(tenant.as_str())
            .bind(now.as_micros())
            .bind(i64::try_from(limit).unwrap_or(1000))
            .fetch_all(&self.pool)
            .await
            .op("queue.due_schedules")?;
        Ok(DueSchedules {
            now,
            schedules: readable(tenant, &rows)?,
        })
    }

    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        let _gate = self.write_gate().await;
        let done = sqlx::query("UPDATE flowstore_schedules SET next_at = ?1 WHERE tenant = ?2 AND name = ?3 AND next_at = ?4")
            .bind(to.as_micros())
            .bind(tenant.as_str())
            .bind(name.as_str())
            .bind(from.as_micros())
            .execute(&self.pool)
            .await
            .op("queue.advance_schedule")?;
        Ok(done.rows_affected() == 1)
    }
}
