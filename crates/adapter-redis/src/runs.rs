//! Run logs in Redis (E1-E11).
//!
//! Per run: a hash (`head` JSON, `status`, `wf`, `started`, `next` sequence number)
//! and a stream of events whose entry ids are `<seq>-0`, so reading from a sequence
//! is `XRANGE` and watching is `XREAD BLOCK` (E7). Sorted sets by start time index the
//! runs of a tenant, per workflow, per status and per both (E5); queries read the most
//! specific one newest first and filter the rest. Creating, appending, finishing and
//! deleting are scripts, so each is atomic; a batch of whole runs is one script call.

use std::collections::VecDeque;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::streams::StreamRangeReply;
use redis::{Script, Value as RedisValue};
use storage_ports::adapter_kit::cursors::RUNS as RUN_CURSOR;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    CompleteRun, Error, EventStream, NewRun, Page, PageRequest, Result, Run, RunEvent,
    RunEventKind, RunId, RunOutcome, RunQuery, RunStep, RunStore, TenantId, Timestamp,
};

use crate::error::{decode, encode, RedisResultExt};
use crate::keys::Keys;
use crate::RedisStore;
use storage_ports::adapter_kit::stored_id;

/// ARGV: prefix, count, then per run: id, workflow, status, start score, head JSON,
/// number of events, then (seq, at, kind JSON) per event. Returns 1 (stored) or 0
/// (the id exists) per run.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3
local out = {}
-- A tenant without runs has no events to count: from here its counter is exact.
if redis.call('EXISTS', p .. 'runs') == 0 then redis.call('HSETNX', p .. 'counters', 'events_kept', '1') end
for r = 1, n do
  local id, wf, st, score, head, ne = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], tonumber(ARGV[i+5])
  i = i + 6
  local key = p .. 'run:' .. id
  if redis.call('EXISTS', key) == 1 then
    out[r] = 0
    i = i + 3 * ne
  else
    redis.call('HSET', key, 'head', head, 'status', st, 'wf', wf, 'started', score, 'next', ne + 1)
    for e = 1, ne do
      redis.call('XADD', key .. ':events', ARGV[i] .. '-0', 'at', ARGV[i+1], 'k', ARGV[i+2])
      i = i + 3
    end
    redis.call('ZADD', p .. 'runs', score, id)
    redis.call('ZADD', p .. 'runs:wf:' .. wf, score, id)
    redis.call('ZADD', p .. 'runs:st:' .. st, score, id)
    redis.call('ZADD', p .. 'runs:wf:' .. wf .. ':st:' .. st, score, id)
    if ne > 0 then redis.call('HINCRBY', p .. 'counters', 'events', ne) end
    out[r] = 1
  end
end
return out
",
    )
});

/// KEYS: run, events, the tenant's counters. ARGV: at, kind JSON. Returns the
/// sequence number, -1 (no run) or -2 (finished).
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -1 end
if st ~= 'running' then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'next', 1) - 1
redis.call('XADD', KEYS[2], seq .. '-0', 'at', ARGV[1], 'k', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'events', 1)
return seq
",
    )
});

/// KEYS: run, events. ARGV: prefix, id, head JSON, status, at, kind JSON. Returns the
/// sequence number of the Finished event, -1 or -2 as APPEND.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local f = redis.call('HMGET', KEYS[1], 'status', 'wf', 'started')
if not f[1] then return -1 end
if f[1] ~= 'running' then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'next', 1) - 1
redis.call('HSET', KEYS[1], 'head', ARGV[3], 'status', ARGV[4])
redis.call('XADD', KEYS[2], seq .. '-0', 'at', ARGV[5], 'k', ARGV[6])
local p, id, wf, score = ARGV[1], ARGV[2], f[2], f[3]
redis.call('HINCRBY', p .. 'counters', 'events', 1)
redis.call('ZREM', p .. 'runs:st:running', id)
redis.call('ZREM', p .. 'runs:wf:' .. wf .. ':st:running', id)
redis.call('ZADD', p .. 'runs:st:' .. ARGV[4], score, id)
redis.call('ZADD', p .. 'runs:wf:' .. wf .. ':st:' .. ARGV[4], score, id)
return seq
",
    )
});

/// KEYS: run, events. ARGV: prefix, id. Returns 1, or 0 when there is no such run.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local f = redis.call('HMGET', KEYS[1], 'status', 'wf', 'next')
if not f[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
local p, id, wf, st = ARGV[1], ARGV[2], f[2], f[1]
redis.call('HINCRBY', p .. 'counters', 'events', 1 - (tonumber(f[3]) or 1))
redis.call('ZREM', p .. 'runs', id)
redis.call('ZREM', p .. 'runs:wf:' .. wf, id)
redis.call('ZREM', p .. 'runs:st:' .. st, id)
redis.call('ZREM', p .. 'runs:wf:' .. wf .. ':st:' .. st, id)
return 1
",
    )
});

/// How long one `XREAD BLOCK` of a watcher waits before it asks again.
const WATCH_BLOCK_MS: u64 = 1_000;
/// Index entries read per round trip while a query filters.
const CHUNK: usize = 200;

fn already_exists(id: &RunId) -> Error {
    kit::run_taken(id)
}

/// Adds one run's arguments to a CREATE call.
fn push_run(args: &mut Vec<String>, run: &CompleteRun) -> Result<()> {
    let r = &run.run;
    let events = run.events();
    let mut mine = vec![
        r.run_id.as_str().to_owned(),
        r.workflow_id.as_str().to_owned(),
        r.status.as_str().to_owned(),
        r.started_at.as_micros().to_string(),
        encode(r, "run")?,
        events.len().to_string(),
    ];
    for e in &events {
        mine.push(e.seq.to_string());
        mine.push(e.at.as_micros().to_string());
        mine.push(encode(&e.kind, "run event")?);
    }
    args.extend(mine);
    Ok(())
}

/// Parses stream entries into events; the sequence number is the entry id's first part.
/// A damaged entry is logged and passed over (W10); reading the whole run says why.
/// Also answers the highest sequence read, damaged or not, so a watcher reads on from
/// there instead of meeting the damaged entry again.
fn events_of(reply: &StreamRangeReply, run: &RunId) -> (Vec<RunEvent>, Option<u64>) {
    let mut last_read = None;
    let decoded = reply.ids.iter().map(|entry| {
        let seq: u64 = entry
            .id
            .split('-')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Error::corrupt(format!("stream entry id {} is not a sequence", entry.id))
            })?;
        last_read = Some(seq);
        let at: i64 = entry
            .get("at")
            .ok_or_else(|| Error::corrupt(format!("event {seq} has no time")))?;
        let kind: String = entry
            .get("k")
            .ok_or_else(|| Error::corrupt(format!("event {seq} has no kind")))?;
        Ok::<_, Error>(RunEvent {
            seq,
            at: Timestamp::from_micros(at),
            kind: decode(&kind, "run event")?,
        })
    });
    let mut events = Vec::with_capacity(reply.ids.len());
    for e in decoded {
        match e {
            Ok(e) => events.push(e),
            Err(e) => tracing::warn!(%run, error = %e, "a damaged run event is skipped"),
        }
    }
    (events, last_read)
}

impl RedisStore {
    /// Stores whole runs in one script call; per run, whether it was stored.
    async fn create_runs(&self, tenant: &TenantId, runs: &[&CompleteRun]) -> Result<Vec<bool>> {
        let keys = self.keys(tenant);
        let mut args = vec![keys.prefix().to_owned(), runs.len().to_string()];
        for r in runs {
            push_run(&mut args, r)?;
        }
        let out: Vec<i64> = CREATE
            .prepare_invoke()
            .arg(args)
            .invoke_async(&mut self.conn())
            .await
            .op("runs.write")?;
        Ok(out.into_iter().map(|x| x == 1).collect())
    }

    async fn head(&self, tenant: &TenantId, run: &RunId) -> Result<Option<Run>> {
        let text: Option<String> = redis::cmd("HGET")
            .arg(self.keys(tenant).run(run))
            .arg("head")
            .query_async(&mut self.conn())
            .await
            .op("runs.get")?;
        text.as_deref().map(|t| decode(t, "run")).transpose()
    }

    fn outcome_code(code: i64, run: &RunId) -> Result<u64> {
        match code {
            -1 => Err(kit::run_missing(run)),
            -2 => Err(kit::run_finished(run)),
            n => Ok(u64::try_from(n).unwrap_or(0)),
        }
    }

    /// The index a query reads: the most specific one its filters allow.
    fn index_for(keys: &Keys, q: &RunQuery) -> String {
        let single = (q.statuses.len() == 1).then(|| q.statuses[0].as_str());
        match (&q.workflow_id, single) {
            (Some(w), Some(s)) => keys.runs_by_workflow_status(w, s),
            (Some(w), None) => keys.runs_by_workflow(w),
            (None, Some(s)) => keys.runs_by_status(s),
            (None, None) => keys.runs(),
        }
    }
}

#[async_trait]
impl RunStore for RedisStore {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.limit.check_new_run(&new)?;
        let started = CompleteRun {
            run: Run::started(new),
            steps: Vec::new(),
        };
        if self.create_runs(tenant, &[&started]).await?.first() != Some(&true) {
            return Err(already_exists(&started.run.run_id));
        }
        Ok(started.run)
    }

    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.limit.check_step(&step)?;
        let keys = self.keys(tenant);
        let at = step.at();
        let code: i64 = APPEND
            .key(keys.run(run))
            .key(keys.run_events(run))
            .key(keys.counters())
            .arg(at.as_micros())
            .arg(encode(&RunEventKind::Step(step), "run step")?)
            .invoke_async(&mut self.conn())
            .await
            .op("runs.append")?;
        Self::outcome_code(code, run)
    }

    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.limit.check_outcome(&outcome)?;
        let mut head = self
            .head(tenant, run)
            .await?
            .ok_or_else(|| kit::run_missing(run))?;
        if head.status.is_terminal() {
            return Err(kit::run_finished(run));
        }
        let kind = RunEventKind::Finished {
            status: outcome.status,
        };
        let ended = outcome.ended_at;
        head.apply(outcome);
        let keys = self.keys(tenant);
        let code: i64 = FINISH
            .key(keys.run(run))
            .key(keys.run_events(run))
            .arg(keys.prefix())
            .arg(run.as_str())
            .arg(encode(&head, "run")?)
            .arg(head.status.as_str())
            .arg(ended.as_micros())
            .arg(encode(&kind, "run event")?)
            .invoke_async(&mut self.conn())
            .await
            .op("runs.finish")?;
        Self::outcome_code(code, run)?;
        Ok(head)
    }

    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.limit.check_run(&run)?;
        if self.create_runs(tenant, &[&run]).await?.first() != Some(&true) {
            return Err(already_exists(&run.run.run_id));
        }
        Ok(())
    }

    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        let mut out: Vec<Option<Result<()>>> = Vec::with_capacity(runs.len());
        let mut sent: Vec<(usize, &CompleteRun)> = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            match self.limit.check_run(run) {
                Ok(()) => {
                    sent.push((i, run));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let stored = if sent.is_empty() {
            Vec::new()
        } else {
            self.create_runs(tenant, &sent.iter().map(|(_, r)| *r).collect::<Vec<_>>())
                .await?
        };
        for ((i, run), ok) in sent.iter().zip(stored) {
            out[*i] = Some(if ok {
                Ok(())
            } else {
                Err(already_exists(&run.run.run_id))
            });
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::backend("a batch entry got no result"))))
            .collect())
    }

    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        self.head(tenant, run)
            .await?
            .ok_or_else(|| kit::run_missing(run))
    }

    async fn get_complete(&self, tenant: &TenantId, run: &RunId) -> Result<CompleteRun> {
        let head = RunStore::get(self, tenant, run).await?;
        let log = RunStore::events(self, tenant, run, 1).await?;
        CompleteRun::from_log(head, log)
    }

    async fn query(&self, tenant: &TenantId, query: RunQuery) -> Result<Page<Run>> {
        let after = query.after()?;
        let limit = query.limit.clamp(1, PageRequest::MAX_LIMIT);
        let keys = self.keys(tenant);
        let index = Self::index_for(&keys, &query);
        let min = query
            .started_from
            .map_or_else(|| "-inf".to_owned(), |t| t.as_micros().to_string());
        // The position to continue below, in (score, id) descending order: the
        // cursor, capped by the exclusive upper bound on start time. `None` as the
        // id means "this score and below".
        let cap = query.started_before.map(|b| b.as_micros() - 1);
        let mut below: Option<(i64, Option<String>)> = match (after, cap) {
            (Some((at, _)), Some(c)) if at > c => Some((c, None)),
            (Some((at, id)), _) => Some((at, Some(id))),
            (None, Some(c)) => Some((c, None)),
            (None, None) => None,
        };
        let mut candidates: Vec<Run> = Vec::new();
        loop {
            let max = below
                .as_ref()
                .map_or_else(|| "+inf".to_owned(), |(at, _)| at.to_string());
            let entries: Vec<(String, i64)> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(&max)
                .arg(&min)
                .arg("BYSCORE")
                .arg("REV")
                .arg("LIMIT")
                .arg(0)
                .arg(CHUNK)
                .arg("WITHSCORES")
                .query_async(&mut self.conn())
                .await
                .op("runs.query")?;
            let exhausted = entries.len() < CHUNK;
            // Entries tied with the position at its score and not below its id were
            // seen already (or are before the cursor).
            let fresh: Vec<(String, i64)> = entries
                .into_iter()
                .filter(|(id, score)| match &below {
                    Some((at, Some(last))) if score == at => id < last,
                    _ => true,
                })
                .collect();
            if fresh.is_empty() && !exhausted {
                // A whole chunk of ties at one score: step below that score.
                below = below.map(|(at, _)| (at - 1, None));
                continue;
            }
            if let Some((id, score)) = fresh.last() {
                below = Some((*score, Some(id.clone())));
            }
            if !fresh.is_empty() {
                let mut pipe = redis::pipe();
                for (id, _) in &fresh {
                    pipe.cmd("HGET")
                        .arg(keys.run(&stored_id(id.clone(), "run id")?))
                        .arg("head");
                }
                let heads: Vec<Option<String>> =
                    pipe.query_async(&mut self.conn()).await.op("runs.query")?;
                for (text, (id, _)) in heads.iter().zip(&fresh) {
                    let Some(text) = text else { continue };
                    match decode::<Run>(text, "run") {
                        Ok(run) if query.matches(&run) => candidates.push(run),
                        Ok(_) => {}
                        // One damaged run never breaks the tenant's queries (W10).
                        Err(e) => {
                            tracing::warn!(%tenant, run = %id, error = %e, "a damaged run is skipped")
                        }
                    }
                }
            }
            if exhausted || candidates.len() > limit {
                break;
            }
        }
        candidates.truncate(limit + 1);
        Ok(Page::from_candidates(
            RUN_CURSOR,
            candidates,
            limit,
            RunQuery::key,
        ))
    }

    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        let keys = self.keys(tenant);
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys.run_events(run))
            .arg(format!("{}-0", from_seq.max(1)))
            .arg("+")
            .query_async(&mut self.conn())
            .await
            .op("runs.events")?;
        if reply.ids.is_empty() {
            let exists: bool = redis::cmd("EXISTS")
                .arg(keys.run(run))
                .query_async(&mut self.conn())
                .await
                .op("runs.events")?;
            if !exists {
                return Err(kit::run_missing(run));
            }
        }
        Ok(events_of(&reply, run).0)
    }

    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        let backlog = RunStore::events(self, tenant, run, from_seq).await?;
        let conn = self.dedicated().await?;
        let stream_key = self.keys(tenant).run_events(run);
        let watched = run.clone();
        struct State {
            buf: VecDeque<RunEvent>,
            next: u64,
            done: bool,
        }
        let next = backlog.last().map_or(from_seq.max(1), |e| e.seq + 1);
        let state = State {
            buf: backlog.into(),
            next,
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            move |mut s| {
                let key = stream_key.clone();
                let mut conn = conn.clone();
                let run = watched.clone();
                async move {
                    loop {
                        if let Some(e) = s.buf.pop_front() {
                            s.next = e.seq.saturating_add(1);
                            s.done = matches!(e.kind, RunEventKind::Finished { .. });
                            return Some((Ok(e), s));
                        }
                        if s.done {
                            return None;
                        }
                        // Entries after the last one delivered, waiting up to a second.
                        let reply: std::result::Result<RedisValue, _> = redis::cmd("XREAD")
                            .arg("BLOCK")
                            .arg(WATCH_BLOCK_MS)
                            .arg("STREAMS")
                            .arg(&key)
                            .arg(format!("{}-0", s.next - 1))
                            .query_async(&mut conn)
                            .await;
                        let parsed = reply.op("runs.watch").and_then(|v| match v {
                            RedisValue::Nil => Ok((Vec::new(), None)),
                            v => redis::from_redis_value::<redis::streams::StreamReadReply>(v)
                                .map_err(|e| Error::corrupt(format!("watch reply: {e}")))
                                .map(|r| {
                                    let (mut events, mut last) = (Vec::new(), None);
                                    for k in r.keys {
                                        let (e, l) =
                                            events_of(&StreamRangeReply { ids: k.ids }, &run);
                                        events.extend(e);
                                        last = last.max(l);
                                    }
                                    (events, last)
                                }),
                        });
                        match parsed {
                            Ok((events, last)) => {
                                // Read on after a damaged entry, not back into it.
                                if events.is_empty() {
                                    if let Some(l) = last {
                                        s.next = s.next.max(l.saturating_add(1));
                                    }
                                }
                                s.buf.extend(events);
                            }
                            Err(e) => {
                                s.done = true;
                                return Some((Err(e), s));
                            }
                        }
                    }
                }
            },
        )))
    }

    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let keys = self.keys(tenant);
        let done: i64 = DELETE
            .key(keys.run(run))
            .key(keys.run_events(run))
            .arg(keys.prefix())
            .arg(run.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("runs.delete")?;
        if done == 0 {
            return Err(kit::run_missing(run));
        }
        Ok(())
    }

    async fn prune(
        &self,
        tenant: &TenantId,
        policy: &storage_ports::RetentionPolicy,
        now: storage_ports::Timestamp,
        dry_run: bool,
        archive: Option<&mut (dyn storage_ports::RunArchive + Send)>,
    ) -> Result<storage_ports::PruneReport> {
        storage_ports::rules::retention::prune_by_query(self, tenant, policy, now, dry_run, archive)
            .await
    }
}
