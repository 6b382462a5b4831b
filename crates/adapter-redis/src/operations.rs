//! Health and stats of the Redis store (O1, O2). Redis has no schema to migrate: keys
//! carry their own shape, so schema and migrate answer `Unsupported`.

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Error, Health, Operations, Result, SchemaStatus, StoreStats, TenantId,
};

use crate::error::RedisResultExt;
use crate::{RedisStore, BACKEND};

/// Counts what a tenant holds from its index keys (never SCAN/KEYS), in time that
/// does not grow with its runs or jobs: runs are one ZCARD, events a counter the run
/// scripts keep (`counters.events`), jobs and documents a ZCARD per queue and
/// collection. A tenant written before the counter existed is counted once, by a walk
/// of its runs, which then marks the counter as kept (`events_kept`). ARGV: tenant
/// prefix. Returns {workflows, versions, runs, events, records, patterns, jobs,
/// documents}.
const STATS: &str = r"
local P = ARGV[1]
local C = P .. 'counters'
local wfs = redis.call('ZRANGE', P .. 'workflows', 0, -1)
local versions = 0
for _, w in ipairs(wfs) do versions = versions + redis.call('HLEN', P .. 'wf:' .. w .. ':versions') end
if redis.call('HGET', C, 'events_kept') ~= '1' then
  local events = 0
  for _, r in ipairs(redis.call('ZRANGE', P .. 'runs', 0, -1)) do
    events = events + redis.call('XLEN', P .. 'run:' .. r .. ':events')
  end
  redis.call('HSET', C, 'events', events, 'events_kept', '1')
end
local jobs = 0
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  local Q = P .. 'q:' .. q .. ':'
  for _, s in ipairs({'ready', 'sched', 'leased', 'dead'}) do jobs = jobs + redis.call('ZCARD', Q .. s) end
end
local docs = 0
for _, c in ipairs(redis.call('ZRANGE', P .. 'collections', 0, -1)) do docs = docs + redis.call('ZCARD', P .. 'docs:' .. c) end
return {#wfs, versions, redis.call('ZCARD', P .. 'runs'), tonumber(redis.call('HGET', C, 'events') or '0'),
  redis.call('HLEN', P .. 'm:records'), redis.call('HLEN', P .. 'm:patterns'), jobs, docs}
";

#[async_trait]
impl Operations for RedisStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        let pong: std::result::Result<String, _> =
            redis::cmd("PING").query_async(&mut self.conn()).await;
        match pong {
            Ok(_) => Health {
                backend: BACKEND.into(),
                ok: true,
                detail: format!("{} answers", self.shown),
            },
            Err(e) => Health {
                backend: BACKEND.into(),
                ok: false,
                detail: format!("{} does not answer: {e}", self.shown),
            },
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let c: Vec<u64> = redis::Script::new(STATS)
            .prepare_invoke()
            .arg(self.keys(tenant).prefix())
            .invoke_async(&mut self.conn())
            .await
            .op("redis.stats")?;
        let at = |i: usize| c.get(i).copied().unwrap_or(0);
        Ok(StoreStats {
            workflows: at(0),
            workflow_versions: at(1),
            runs: at(2),
            run_events: at(3),
            metric_records: at(4),
            patterns: at(5),
            jobs: at(6),
            documents: at(7),
            ..StoreStats::default()
        })
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            BACKEND,
            "schema migrations (keys carry their own shape)",
        ))
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            BACKEND,
            "schema migrations (keys carry their own shape)",
        ))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        Err(Error::unsupported(
            BACKEND,
            "listing tenants; name them explicitly",
        ))
    }
}
