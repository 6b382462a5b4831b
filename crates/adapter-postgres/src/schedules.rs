//! Schedules in PostgreSQL (Q19): one row per schedule, the spec as JSONB, times on
//! the server's clock. `advance_schedule` is one conditional `UPDATE ... WHERE next_at
//! = $from`: of the schedulers that race on a tick, one moves it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use storage_ports::rules::schedule::{check_due_limit, no_schedule, stored};
use storage_ports::{
    DueSchedules, Error, NewSchedule, Result, Schedule, ScheduleName, ScheduleStore, TenantId,
    Timestamp,
};

use crate::error::SqlxResultExt;
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;

fn schedule_of(row: &PgRow) -> Result<Schedule> {
    let spec: Json<serde_json::Value> = row.try_get("spec").op("schedules.decode")?;
    Ok(Schedule {
        spec: serde_json::from_value(spec.0)
            .map_err(|e| Error::corrupt(format!("stored schedule cannot be read: {e}")))?,
        anchor: from_pg(row.try_get("anchor").op("schedules.decode")?),
        next_at: from_pg(row.try_get("next_at").op("schedules.decode")?),
        paused: row.try_get("paused").op("schedules.decode")?,
    })
}

fn readable<'a>(tenant: &TenantId, rows: impl Iterator<Item = &'a PgRow>) -> Result<Vec<Schedule>> {
    let (items, damaged) = storage_ports::adapter_kit::readable(rows.map(schedule_of))?;
    for e in damaged {
        tracing::warn!(%tenant, error = %e, "a damaged schedule is left out");
    }
    Ok(items)
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule> {
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await
            .op("queue.put_schedule")?;
        let kept = stored(schedule, from_pg(now), None)?;
        let spec = serde_json::to_value(&kept.spec)
            .map_err(|e| Error::invalid_input(format!("schedule cannot be stored: {e}")))?;
        let paused: bool = sqlx::query_scalar("INSERT INTO flowstore_schedules (tenant, name, spec, anchor, next_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, name) DO UPDATE SET spec = excluded.spec, anchor = excluded.anchor, next_at = excluded.next_at \
             RETURNING paused")
            .bind(tenant.as_str())
            .bind(kept.spec.name.as_str())
            .bind(Json(spec))
            .bind(to_pg(kept.anchor)?)
            .bind(to_pg(kept.next_at)?)
            .fetch_one(&self.pool)
            .await
            .op("queue.put_schedule")?;
        Ok(Schedule { paused, ..kept })
    }

    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>> {
        let rows = sqlx::query(
            "SELECT spec, anchor, next_at, paused FROM flowstore_schedules WHERE tenant = $1 ORDER BY name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .op("queue.schedules")?;
        readable(tenant, rows.iter())
    }

    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE flowstore_schedules SET paused = $1 WHERE tenant = $2 AND name = $3",
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
        let done = sqlx::query("DELETE FROM flowstore_schedules WHERE tenant = $1 AND name = $2")
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
        // The server's clock decides, and is returned even when nothing is due.
        let rows = sqlx::query(
            "WITH n AS (SELECT now() AS now) \
             SELECT n.now, s.spec, s.anchor, s.next_at, s.paused FROM n LEFT JOIN LATERAL ( \
               SELECT spec, anchor, next_at, paused FROM flowstore_schedules \
               WHERE tenant = $1 AND NOT paused AND next_at <= n.now ORDER BY next_at LIMIT $2) s ON true",
        )
        .bind(tenant.as_str())
        .bind(i64::try_from(limit).unwrap_or(1000))
        .fetch_all(&self.pool)
        .await
        .op("queue.due_schedules")?;
        let now = match rows.first() {
            Some(r) => from_pg(r.try_get("now").op("schedules.decode")?),
            None => return Err(Error::backend("now() returned no row")),
        };
        let present = rows.iter().filter(|r| {
            r.try_get::<Option<Json<serde_json::Value>>, _>("spec")
                .is_ok_and(|s| s.is_some())
        });
        Ok(DueSchedules {
            now,
            schedules: readable(tenant, present)?,
        })
    }

    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE flowstore_schedules SET next_at = $1 WHERE tenant = $2 AND name = $3 AND next_at = $4")
            .bind(to_pg(to)?)
            .bind(tenant.as_str())
            .bind(name.as_str())
            .bind(to_pg(from)?)
            .execute(&self.pool)
            .await
            .op("queue.advance_schedule")?;
        Ok(done.rows_affected() == 1)
    }
}
