//! Schedules in Redis (Q19): `sched` (name -> the spec and its anchor, JSON),
//! `sched:next` (running schedules scored by next tick, in microseconds) and
//! `sched:held` (paused schedules: name -> next tick). Every change is one script on
//! the server's clock (`TIME`); `advance_schedule` moves a tick only if the score is
//! still the one the caller read, so of the schedulers racing on a tick, one moves it.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use serde::{Deserialize, Serialize};
use storage_ports::rules::schedule::{check_due_limit, no_schedule, stored};
use storage_ports::{
    DueSchedules, Error, NewSchedule, Result, Schedule, ScheduleName, ScheduleStore, TenantId,
    Timestamp,
};

use crate::error::{decode, encode, RedisResultExt};
use crate::RedisStore;

/// What `sched` holds per schedule.
#[derive(Serialize, Deserialize)]
struct Stored {
    spec: NewSchedule,
    anchor: Timestamp,
}

/// KEYS: sched, sched:next, sched:held. ARGV: name, stored JSON, next tick. Keeps a
/// paused schedule paused. Returns 1 when it is paused.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  return 1
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 0
",
    )
});

/// KEYS as PUT. ARGV: name, '1' to pause or '0' to resume. Returns 0 for no such
/// schedule.
static SET_PAUSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '1' then
  local next = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if next then
    redis.call('HSET', KEYS[3], ARGV[1], next)
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
else
  local next = redis.call('HGET', KEYS[3], ARGV[1])
  if next then
    redis.call('ZADD', KEYS[2], next, ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
end
return 1
",
    )
});

/// KEYS as PUT. ARGV: name. Returns 0 for no such schedule.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
",
    )
});

/// KEYS: sched, sched:next. ARGV: limit. Returns {server time, {name, stored JSON,
/// next tick} per due schedule}, earliest first.
static DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
for k = 1, #due, 2 do
  out[#out + 1] = {due[k], redis.call('HGET', KEYS[1], due[k]) or '', due[k + 1]}
end
return {string.format('%d', now), out}
",
    )
});

/// KEYS: sched:next. ARGV: name, from, to. Returns 1 when the tick moved.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
",
    )
});

fn schedule_of(json: &str, next_at: i64, paused: bool) -> Result<Schedule> {
    let s: Stored = decode(json, "schedule")?;
    Ok(Schedule {
        spec: s.spec,
        anchor: s.anchor,
        next_at: Timestamp::from_micros(next_at),
        paused,
    })
}

/// A score as the integer microseconds it was written as.
fn micros(score: &str) -> Result<i64> {
    score
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f as i64)
        .ok_or_else(|| Error::corrupt(format!("stored schedule tick {score:?} is not a number")))
}

#[async_trait]
impl ScheduleStore for RedisStore {
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule> {
        let (secs, us): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.conn())
            .await
            .op("queue.put_schedule")?;
        let now = Timestamp::from_micros(secs * 1_000_000 + us);
        let kept = stored(schedule, now, None)?;
        let json = encode(
            &Stored {
                spec: kept.spec.clone(),
                anchor: kept.anchor,
            },
            "schedule",
        )?;
        let keys = self.keys(tenant);
        let paused: i64 = PUT
            .key(keys.schedules())
            .key(keys.schedules_next())
            .key(keys.schedules_held())
            .arg(kept.spec.name.as_str())
            .arg(json)
            .arg(kept.next_at.as_micros())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.put_schedule")?;
        Ok(Schedule {
            paused: paused == 1,
            ..kept
        })
    }

    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>> {
        let keys = self.keys(tenant);
        let (specs, next, held): (
            HashMap<String, String>,
            Vec<(String, String)>,
            HashMap<String, String>,
        ) = redis::pipe()
            .cmd("HGETALL")
            .arg(keys.schedules())
            .cmd("ZRANGE")
            .arg(keys.schedules_next())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("HGETALL")
            .arg(keys.schedules_held())
            .query_async(&mut self.conn())
            .await
            .op("queue.schedules")?;
        let next: HashMap<String, String> = next.into_iter().collect();
        let mut names: Vec<&String> = specs.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let (tick, paused) = match (next.get(name), held.get(name)) {
                (Some(t), _) => (t, false),
                (None, Some(t)) => (t, true),
                (None, None) => continue,
            };
            let read = micros(tick).and_then(|t| schedule_of(&specs[name], t, paused));
            match read {
                Ok(s) => out.push(s),
                Err(e) => {
                    tracing::warn!(%tenant, schedule = %name, error = %e, "a damaged schedule is left out");
                }
            }
        }
        Ok(out)
    }

    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()> {
        let keys = self.keys(tenant);
        let done: i64 = SET_PAUSED
            .key(keys.schedules())
            .key(keys.schedules_next())
            .key(keys.schedules_held())
            .arg(name.as_str())
            .arg(if paused { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .op("queue.set_schedule_paused")?;
        if done == 0 {
            return Err(no_schedule(name));
        }
        Ok(())
    }

    async fn delete_schedule(&self, tenant: &TenantId, name: &ScheduleName) -> Result<()> {
        let keys = self.keys(tenant);
        let done: i64 = DELETE
            .key(keys.schedules())
            .key(keys.schedules_next())
            .key(keys.schedules_held())
            .arg(name.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.delete_schedule")?;
        if done == 0 {
            return Err(no_schedule(name));
        }
        Ok(())
    }

    async fn due_schedules(&self, tenant: &TenantId, limit: usize) -> Result<DueSchedules> {
        check_due_limit(limit)?;
        let keys = self.keys(tenant);
        let (now, rows): (i64, Vec<(String, String, String)>) = DUE
            .key(keys.schedules())
            .key(keys.schedules_next())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.due_schedules")?;
        let mut schedules = Vec::with_capacity(rows.len());
        for (name, json, tick) in rows {
            match micros(&tick).and_then(|t| schedule_of(&json, t, false)) {
                Ok(s) => schedules.push(s),
                Err(e) => {
                    tracing::warn!(%tenant, schedule = %name, error = %e, "a damaged schedule is left out");
                }
            }
        }
        Ok(DueSchedules {
            now: Timestamp::from_micros(now),
            schedules,
        })
    }

    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        let moved: i64 = ADVANCE
            .key(self.keys(tenant).schedules_next())
            .arg(name.as_str())
            .arg(from.as_micros())
            .arg(to.as_micros())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.advance_schedule")?;
        Ok(moved == 1)
    }
}
