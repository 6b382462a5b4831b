//! Metrics in Redis (M1-M6).
//!
//! Records live in one hash per tenant (run id -> JSON: idempotence, M1). Aggregates
//! per (workflow, version) and per (workflow, value name) are JSON in hashes, folded
//! optimistically: read, fold with the shared rules, then one script writes the record,
//! the folded states and the points only if nothing changed since the read (M5);
//! otherwise the adapter reads again. Points are sorted sets by finish time per value
//! name, members `<run>|<value>`, so series and baselines read ranges (M3).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use storage_ports::MetricsTransfer;
use storage_ports::{
    Baseline, Distribution, DistributionSummary, Error, MetricName, MetricSummary, MetricsStore,
    Pattern, PatternObservation, Result, RunAggregate, RunMetric, SeriesBucket, SeriesQuery,
    TenantId, Timestamp, WorkflowId,
};

use crate::error::{decode, encode, RedisResultExt};
use crate::RedisStore;

/// Attempts before a fold under constant contention gives up (retryably).
const MAX_ATTEMPTS: usize = 200;

/// KEYS: records, aggregates, values, then one points key per value.
/// ARGV: run id, record, version, old aggregate ('' = none), new aggregate, then per
/// value: name, old state ('' = none), new state, score, member.
/// Returns 1 (recorded), 0 (already recorded) or -1 (state moved: read again).
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local function same(key, field, old)
  local cur = redis.call('HGET', key, field)
  if not cur then return old == '' end
  return cur == old
end
if not same(KEYS[2], ARGV[3], ARGV[4]) then return -1 end
local n = (#ARGV - 5) / 5
for v = 1, n do
  local a = 5 + (v - 1) * 5
  if not same(KEYS[3], ARGV[a + 1], ARGV[a + 2]) then return -1 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
for v = 1, n do
  local a = 5 + (v - 1) * 5
  redis.call('HSET', KEYS[3], ARGV[a + 1], ARGV[a + 3])
  redis.call('ZADD', KEYS[3 + v], ARGV[a + 4], ARGV[a + 5])
end
return 1
",
    )
});

/// KEYS: patterns. ARGV: field, old ('' = none), new. Returns 1, or 0 (moved).
static PUT_IF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
",
    )
});

fn pattern_field(p_workflow: &WorkflowId, kind: &str, key: &str) -> Result<String> {
    encode(&(p_workflow.as_str(), kind, key), "pattern key")
}

fn point_value(member: &str) -> Result<f64> {
    member
        .rsplit_once('|')
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| Error::corrupt(format!("stored metric point {member:?} has no value")))
}

fn contention(what: &str) -> Error {
    Error::unavailable(format!(
        "{what}: {MAX_ATTEMPTS} concurrent writers in a row changed it first; retry"
    ))
}

#[async_trait]
impl MetricsStore for RedisStore {
    async fn record(&self, tenant: &TenantId, metric: RunMetric) -> Result<bool> {
        metric.validate()?;
        let keys = self.keys(tenant);
        let w = &metric.workflow_id;
        let record = encode(&metric, "metric record")?;
        let names: Vec<&MetricName> = metric.values.keys().collect();
        for _ in 0..MAX_ATTEMPTS {
            let mut read = redis::pipe();
            read.cmd("HEXISTS")
                .arg(keys.metric_records())
                .arg(metric.run_id.as_str())
                .cmd("HGET")
                .arg(keys.metric_aggregates(w))
                .arg(metric.version);
            let (exists, old_agg, old_values): (bool, Option<String>, Vec<Option<String>>) =
                if names.is_empty() {
                    let (e, a): (bool, Option<String>) = read
                        .query_async(&mut self.conn())
                        .await
                        .op("metrics.record")?;
                    (e, a, Vec::new())
                } else {
                    read.cmd("HMGET")
                        .arg(keys.metric_values(w))
                        .arg(names.iter().map(|n| n.as_str()).collect::<Vec<_>>());
                    read.query_async(&mut self.conn())
                        .await
                        .op("metrics.record")?
                };
            if exists {
                return Ok(false);
            }
            let mut agg: RunAggregate = old_agg
                .as_deref()
                .map(|t| decode(t, "aggregate"))
                .transpose()?
                .unwrap_or_default();
            agg.add(&metric);
            let mut call = RECORD.prepare_invoke();
            call.key(keys.metric_records())
                .key(keys.metric_aggregates(w))
                .key(keys.metric_values(w));
            call.arg(metric.run_id.as_str())
                .arg(&record)
                .arg(metric.version)
                .arg(old_agg.as_deref().unwrap_or(""))
                .arg(encode(&agg, "aggregate")?);
            for ((name, v), old) in metric.values.iter().zip(&old_values) {
                let mut d: Distribution = old
                    .as_deref()
                    .map(|t| decode(t, "value aggregate"))
                    .transpose()?
                    .unwrap_or_default();
                d.add(*v);
                call.key(keys.metric_points(w, name.as_str()));
                call.arg(name.as_str())
                    .arg(old.as_deref().unwrap_or(""))
                    .arg(encode(&d, "value aggregate")?)
                    .arg(metric.finished_at.as_micros())
                    .arg(format!("{}|{v}", metric.run_id));
            }
            let done: i64 = call
                .invoke_async(&mut self.conn())
                .await
                .op("metrics.record")?;
            match done {
                1 => return Ok(true),
                0 => return Ok(false),
                _ => {}
            }
        }
        Err(contention("metrics aggregate"))
    }

    async fn summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: Option<u32>,
    ) -> Result<MetricSummary> {
        let all: BTreeMap<u32, String> = redis::cmd("HGETALL")
            .arg(self.keys(tenant).metric_aggregates(workflow))
            .query_async(&mut self.conn())
            .await
            .op("metrics.summary")?;
        let mut total = RunAggregate::default();
        for (v, state) in &all {
            if version.is_none_or(|want| want == *v) {
                total.merge(&decode(state, "aggregate")?);
            }
        }
        Ok(total.summary())
    }

    async fn value_summary(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
    ) -> Result<Option<DistributionSummary>> {
        let state: Option<String> = redis::cmd("HGET")
            .arg(self.keys(tenant).metric_values(workflow))
            .arg(name.as_str())
            .query_async(&mut self.conn())
            .await
            .op("metrics.value_summary")?;
        Ok(state
            .as_deref()
            .map(|s| decode::<Distribution>(s, "value aggregate"))
            .transpose()?
            .and_then(|d| d.summary()))
    }

    async fn series(&self, tenant: &TenantId, query: SeriesQuery) -> Result<Vec<SeriesBucket>> {
        query.validate()?;
        let points: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(
                self.keys(tenant)
                    .metric_points(&query.workflow_id, query.name.as_str()),
            )
            .arg(query.from.as_micros())
            .arg(format!("({}", query.to.as_micros()))
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await
            .op("metrics.series")?;
        let points = points
            .iter()
            .map(|(m, at)| Ok((Timestamp::from_micros(*at), point_value(m)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(query.bucketize(points))
    }

    async fn baseline(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        name: &MetricName,
        last_n: usize,
    ) -> Result<Option<Baseline>> {
        if last_n == 0 {
            return Ok(None);
        }
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys(tenant).metric_points(workflow, name.as_str()))
            .arg("+inf")
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(last_n)
            .query_async(&mut self.conn())
            .await
            .op("metrics.baseline")?;
        let values = members
            .iter()
            .map(|m| point_value(m))
            .collect::<Result<Vec<_>>>()?;
        Ok(Baseline::of(&values))
    }

    async fn upsert_pattern(
        &self,
        tenant: &TenantId,
        observation: PatternObservation,
    ) -> Result<Pattern> {
        observation.validate()?;
        self.limit.check_pattern(&observation)?;
        let key = self.keys(tenant).patterns();
        let field = pattern_field(
            &observation.workflow_id,
            &observation.kind,
            &observation.key,
        )?;
        for _ in 0..MAX_ATTEMPTS {
            let old: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg(&field)
                .query_async(&mut self.conn())
                .await
                .op("metrics.upsert_pattern")?;
            let previous: Option<Pattern> =
                old.as_deref().map(|t| decode(t, "pattern")).transpose()?;
            let next = Pattern::upserted(previous.as_ref(), observation.clone());
            let done: i64 = PUT_IF
                .key(&key)
                .arg(&field)
                .arg(old.as_deref().unwrap_or(""))
                .arg(encode(&next, "pattern")?)
                .invoke_async(&mut self.conn())
                .await
                .op("metrics.upsert_pattern")?;
            if done == 1 {
                return Ok(next);
            }
        }
        Err(contention("pattern"))
    }

    async fn patterns(
        &self,
        tenant: &TenantId,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<Pattern>> {
        let all: Vec<String> = redis::cmd("HVALS")
            .arg(self.keys(tenant).patterns())
            .query_async(&mut self.conn())
            .await
            .op("metrics.patterns")?;
        // A damaged pattern is logged and skipped (W10).
        let (mut out, damaged) = storage_ports::adapter_kit::readable(
            all.iter().map(|text| decode::<Pattern>(text, "pattern")),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged pattern is skipped");
        }
        out.retain(|p| workflow.is_none_or(|w| *w == p.workflow_id));
        out.sort_by(Pattern::listing_order);
        Ok(out)
    }
}

#[async_trait]
impl MetricsTransfer for RedisStore {
    async fn export_records(&self, tenant: &TenantId) -> Result<Vec<RunMetric>> {
        let all: Vec<String> = redis::cmd("HVALS")
            .arg(self.keys(tenant).metric_records())
            .query_async(&mut self.conn())
            .await
            .op("metrics.export_records")?;
        let (mut out, damaged) = storage_ports::adapter_kit::readable(
            all.iter().map(|t| decode::<RunMetric>(t, "metric record")),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged metric record is skipped");
        }
        out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        Ok(out)
    }

    async fn put_pattern(&self, tenant: &TenantId, pattern: Pattern) -> Result<()> {
        let field = pattern_field(&pattern.workflow_id, &pattern.kind, &pattern.key)?;
        let () = redis::cmd("HSET")
            .arg(self.keys(tenant).patterns())
            .arg(field)
            .arg(encode(&pattern, "pattern")?)
            .query_async(&mut self.conn())
            .await
            .op("metrics.put_pattern")?;
        Ok(())
    }
}
