//! The job queue in Redis (Q1-Q16).
//!
//! Per queue (`flowstore:{t}:q:<queue>:`): a hash per job, and sorted sets by state:
//! `ready` (score 0, members ordered by a fixed-width key of priority, run-at time and
//! enqueue order, then the id), `sched` (delayed jobs, the same members, scored by
//! run-at time, so promoting them is a move between two sets), `leased` (by
//! lease expiry) and `dead` (by time of death), plus `dedup` (key -> job). Every
//! change is one script, so it is atomic, and every script reads the server's clock
//! (`TIME`), so the nodes sharing the server agree on what is due and who holds what.
//! Dequeue takes back a bounded number of expired leases, promotes a bounded number of
//! due jobs and leases the best ready ones with fresh fencing tokens (Q4) in one step.
//! Enqueue and ack of a batch are one script call each (Q10). Finished jobs (Q15) sit
//! in lexically ordered history sets (`hist`, `hist:<state>`) and, with a keep_for, in
//! the tenant's retention set `keep`, which prune reads a bounded slice of.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use serde_json::Value;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    Backoff, CancelOutcome, DeadJob, DeadState, Dequeue, Enqueued, Error, ExportedJob, FailOutcome,
    FinishedState, HistoryQuery, JobFailure, JobId, JobInfo, JobQueue, JobStatus, Lease, LeasedJob,
    NewJob, Page, QueueName, QueueStats, Result, TenantId, Timestamp,
};
use storage_ports::{ErrorKind, JobQueueExt as _, JobTransfer};

use crate::error::{decode, encode, RedisResultExt};
use crate::RedisStore;
use storage_ports::adapter_kit::stored_id;
use storage_ports::rules::lease::{limited_scan, takeback_limit};

/// How many due jobs one dequeue of `max` moves from `sched` to `ready`, at most. A
/// move costs no call per job, so this can be larger than the take-back limit; until a
/// due job is moved, a job of lower priority moved before it may go first (a backlog
/// of more due jobs than this).
const fn promote_limit(max: usize) -> usize {
    max.saturating_mul(2).saturating_add(100)
}

/// A duration in whole microseconds, as the scripts add them to the server's clock.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// How often a waiter looks again; Redis has no notification a waiter could share
/// without a connection of its own.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Lua every queue script starts with.
///
/// - `server_now()` is the server's clock (`TIME`), in microseconds: every due time,
///   lease expiry and death is decided on it, never on a caller's clock, so nodes whose
///   clocks disagree still agree on who holds a job.
/// - `int(x)` writes a number as an integer string, the form the Rust side parses.
/// - `order_key(prio, at, seq, id)` is a job's member in the ready set: inverted
///   priority (10 digits, so higher priorities sort first), run-at time (19 digits),
///   enqueue sequence (19 digits), `|`, the id. Members share score 0, so the set
///   pops in this order (Q2). `reorder` gives a member a new priority and time and
///   keeps its sequence and id.
/// - `take_tokens(C, n)` reserves `n` fencing tokens and returns the one before the
///   first. Tokens never go back: each is above every token issued before and above
///   the server's clock in microseconds, so a restart that lost the counter's last
///   writes (`appendfsync everysec` loses up to a second) still issues only new tokens,
///   while the clock does not step back and fewer than a million leases a second are
///   taken on average (docs/reliability.md).
const PRELUDE: &str = r"
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x) return string.format('%d', x) end
local function clamp(at) return math.min(math.max(tonumber(at), 0), 9000000000000000) end
local function prefix(prio, at) return string.format('%010d%019d', 2147483647 - tonumber(prio), clamp(at)) end
local function order_key(prio, at, seq, id) return prefix(prio, at) .. string.format('%019d', seq) .. '|' .. id end
local function reorder(old, prio, at) return prefix(prio, at) .. string.sub(old, 30) end
-- The job id of a ready or scheduled member (a member written before flowstore kept
-- order keys there is the id itself).
local function member_id(m)
  if string.sub(m, 49, 49) == '|' then return string.sub(m, 50) end
  return m
end
-- A finished job's member in the history sets: the finish time inverted (16 digits),
-- then the id with every byte inverted and a 255 byte closing it, so that the sets,
-- all of score 0, list newest finish first and, within one microsecond, the greater
-- id first, as every backend orders the history (Q15).
local function hist_key(at, id)
  local inv = {}
  for k = 1, #id do inv[k] = string.char(255 - string.byte(id, k)) end
  return string.format('%016d', 9000000000000000 - clamp(at)) .. table.concat(inv) .. '\255'
end
local function hist_id(m)
  local inv = {}
  for k = 17, #m - 1 do inv[#inv + 1] = string.char(255 - string.byte(m, k)) end
  return table.concat(inv)
end
-- Takes a job out of the running set of its concurrency key, `lk:<key>` (Q18): job
-- ids scored by lease expiry, so that a key's running jobs are those scored after now.
local function unrun(Q, key, id)
  local ck = redis.call('HGET', key, 'ckey')
  if ck and ck ~= '' then redis.call('ZREM', Q .. 'lk:' .. ck, id) end
end
-- Finishes a job as `state` (completed, cancelled or dead) at `at`: into the history
-- sets, the dead letters for a dead one, and, with a keep_for, the tenant's retention
-- set, scored by when it may be pruned. The caller has taken it out of the ready,
-- scheduled or leased set.
local function finish(Q, key, id, state, at)
  local P, qname = string.match(Q, '^(.-}:)q:(.*):$')
  local hk = hist_key(at, id)
  unrun(Q, key, id)
  redis.call('HDEL', key, 'token', 'exp')
  redis.call('HSET', key, 'state', state, 'fin', int(at))
  redis.call('ZADD', Q .. 'hist', 0, hk)
  redis.call('ZADD', Q .. 'hist:' .. state, 0, hk)
  if state == 'dead' then
    redis.call('HSET', key, 'died', int(at))
    redis.call('ZADD', Q .. 'dead', at, id)
  end
  local f = redis.call('HMGET', key, 'keep', 'dedup')
  if f[1] and f[1] ~= '' then redis.call('ZADD', P .. 'keep', at + tonumber(f[1]), qname .. '/' .. id) end
  if f[2] and f[2] ~= '' then
    if redis.call('HGET', Q .. 'dedup', f[2]) == id then redis.call('HDEL', Q .. 'dedup', f[2]) end
    -- The newest kept job that ran, for unique periods (Q17).
    if state ~= 'cancelled' and f[1] and f[1] ~= '' then redis.call('HSET', Q .. 'ufin', f[2], id) end
  end
end
-- Takes a finished job out of the history (a requeue, or retention).
local function unfinish(Q, key, id)
  local P, qname = string.match(Q, '^(.-}:)q:(.*):$')
  local f = redis.call('HMGET', key, 'fin', 'state', 'dedup')
  if f[3] and f[3] ~= '' and redis.call('HGET', Q .. 'ufin', f[3]) == id then redis.call('HDEL', Q .. 'ufin', f[3]) end
  if f[1] then
    local hk = hist_key(tonumber(f[1]), id)
    redis.call('ZREM', Q .. 'hist', hk)
    redis.call('ZREM', Q .. 'hist:' .. (f[2] or ''), hk)
  end
  redis.call('ZREM', P .. 'keep', qname .. '/' .. id)
  redis.call('HDEL', key, 'fin')
end
-- Whether `token` holds the job: 1, 0 (stale) or -1 (its cancel was asked for: it is
-- finished as cancelled here, Q14).
local function held(Q, key, id, token)
  local f = redis.call('HMGET', key, 'state', 'token', 'cancel')
  if f[1] ~= 'leased' or f[2] ~= token then return 0 end
  if f[3] == '1' then
    redis.call('ZREM', Q .. 'leased', id)
    finish(Q, key, id, 'cancelled', server_now())
    return -1
  end
  return 1
end
local function take_tokens(C, n)
  local last = tonumber(redis.call('HGET', C, 'token') or '0')
  local base = math.max(last, server_now())
  redis.call('HSET', C, 'token', int(base + n))
  return base
end
";

/// Where the id starts in a ready-set member (see `order_key`).
const ORDER_ID_AT: usize = 49;

/// A queue script: the prelude, then `body`.
fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// ARGV: queue prefix, counters, queue set, queue name, count, then per job: id,
/// payload, priority, run_at ('' = none), delay in microseconds, max attempts,
/// backoff, dedup key ('' = none), named ('1' when the caller chose the id, so it may
/// be taken), keep_for in microseconds ('' = none), unique period in microseconds (0 =
/// none), concurrency key ('' = none). Returns per job {code, id}: 1 stored, 2
/// deduplicated onto id, 0 id taken.
/// A duplicate is the live job the key maps to in `dedup`, else, with a period, the
/// newest finished job it maps to in `ufin`, when it completed or died within the
/// period (Q17).
///
/// One counter increment reserves the batch's enqueue sequence numbers, and the ready
/// set takes its members in one ZADD per 500: a batch costs a hash write per job and a
/// handful of calls besides, not four calls per job.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, C, QS, qname, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = server_now()
redis.call('SADD', QS, qname)
local seq = redis.call('HINCRBY', C, 'seq', n) - n
local out, ready = {}, {}
local i = 6
for j = 1, n do
  local id, payload, prio, run_at, delay, max, backoff, dedup, named, keep, period = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7], ARGV[i+8], ARGV[i+9], tonumber(ARGV[i+10])
  local ckey = ARGV[i+11]
  i = i + 12
  local key = Q .. 'job:' .. id
  local holder = false
  if dedup ~= '' then
    local other = redis.call('HGET', Q .. 'dedup', dedup)
    if other then
      local st = redis.call('HGET', Q .. 'job:' .. other, 'state')
      if st == 'ready' or st == 'leased' then holder = other end
    end
    if not holder and period > 0 then
      local done = redis.call('HGET', Q .. 'ufin', dedup)
      if done then
        local f = redis.call('HMGET', Q .. 'job:' .. done, 'state', 'fin')
        if (f[1] == 'completed' or f[1] == 'dead') and tonumber(f[2] or '0') >= now - period then holder = done end
      end
    end
  end
  if holder then
    out[j] = {2, holder}
  elseif named == '1' and redis.call('EXISTS', key) == 1 then
    out[j] = {0, id}
  else
    seq = seq + 1
    local at = run_at
    if at == '' then at = int(now + tonumber(delay)) end
    local order = order_key(prio, at, seq, id)
    redis.call('HSET', key, 'payload', payload, 'priority', prio, 'run_at', at, 'max', max,
      'backoff', backoff, 'dedup', dedup, 'attempts', 0, 'state', 'ready', 'enq', int(now), 'order', order, 'keep', keep, 'ckey', ckey)
    if dedup ~= '' then redis.call('HSET', Q .. 'dedup', dedup, id) end
    if tonumber(at) <= now then
      ready[#ready + 1] = 0
      ready[#ready + 1] = order
      if #ready >= 1000 then
        redis.call('ZADD', Q .. 'ready', unpack(ready))
        ready = {}
      end
    else
      redis.call('ZADD', Q .. 'sched', at, order)
    end
    out[j] = {1, id}
  end
end
if #ready > 0 then redis.call('ZADD', Q .. 'ready', unpack(ready)) end
return out
",
    )
});

/// ARGV: queue prefix, counters, max, lease length in microseconds, take-back limit,
/// promotion limit, key limit ('' = none), queue limit ('' = none), candidate window.
/// With a limit (Q18), the best ready jobs are read from a window of the ready set,
/// skipping those whose key has reached its limit (its `lk:<key>` set counts the
/// running jobs), instead of popped. Returns {lease expiry, {per leased job {id, payload, priority,
/// attempt, max attempts, enqueued at, token}}}.
///
/// Work is bounded by the batch: at most `limit` expired leases are taken back (oldest
/// expiry first, a few calls each) and at most `promote` due jobs promoted (earliest
/// first, three calls in all) per call, so a backlog is worked off over calls instead
/// of blocking the server in one. Expired leases taken compete with the ready jobs
/// for this call only: those not delivered go back to the leased set with their token,
/// so their holders may still ack, fail or heartbeat (Q4, the rule of
/// `storage_ports::rules::lease`). One on its last attempt dies instead.
/// The best ready jobs come off in one ZPOPMIN, their tokens from one counter update,
/// and their leases go into the leased set in one ZADD.
static DEQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, C, max, lease_us, limit, promote = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local klimit, qlimit, scan = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local now = server_now()
local exp = int(now + lease_us)
if redis.call('EXISTS', Q .. 'paused') == 1 then return {exp, {}} end
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'leased', '-inf', now, 'LIMIT', 0, limit)) do
  local key = Q .. 'job:' .. id
  local f = redis.call('HMGET', key, 'attempts', 'max', 'order', 'exp', 'cancel')
  if not f[3] then
    redis.call('ZREM', Q .. 'leased', id)
  elseif f[5] == '1' then
    -- A cancelled job is never delivered again (Q14).
    redis.call('ZREM', Q .. 'leased', id)
    finish(Q, key, id, 'cancelled', now)
  elseif tonumber(f[1]) >= tonumber(f[2]) then
    redis.call('ZREM', Q .. 'leased', id)
    redis.call('HSET', key, 'err', 'lease expired on attempt ' .. f[1] .. ' of ' .. f[2])
    finish(Q, key, id, 'dead', now)
  else
    taken[#taken + 1] = {id, f[3], f[4]}
    redis.call('ZADD', Q .. 'ready', 0, f[3])
  end
end
local due = redis.call('ZRANGEBYSCORE', Q .. 'sched', '-inf', now, 'LIMIT', 0, promote)
if #due > 0 then
  local moved = {}
  for k, m in ipairs(due) do
    moved[2 * k - 1] = 0
    -- A member written before flowstore kept order keys here is a job id.
    if string.sub(m, 49, 49) == '|' then
      moved[2 * k] = m
    else
      moved[2 * k] = redis.call('HGET', Q .. 'job:' .. m, 'order') or m
    end
  end
  redis.call('ZREM', Q .. 'sched', unpack(due))
  redis.call('ZADD', Q .. 'ready', unpack(moved))
end
local popped = {}
if klimit or qlimit then
  local room = max
  if qlimit then room = math.min(max, math.max(qlimit - redis.call('ZCOUNT', Q .. 'leased', '(' .. now, '+inf'), 0)) end
  local counts, chosen = {}, {}
  -- The window is read in slices of twice the batch, so a claim whose first
  -- candidates fit reads no more than those.
  local from, step = 0, math.max(2 * max, 16)
  while room > 0 and #chosen < room and from < scan do
    local slice = redis.call('ZRANGE', Q .. 'ready', from, math.min(from + step, scan) - 1)
    if #slice == 0 then break end
    from = from + #slice
    for _, m in ipairs(slice) do
      if #chosen >= room then break end
      local ck = redis.call('HGET', Q .. 'job:' .. string.sub(m, 50), 'ckey')
      local ok = true
      if klimit and ck and ck ~= '' then
        local n = counts[ck]
        if not n then
          redis.call('ZREMRANGEBYSCORE', Q .. 'lk:' .. ck, '-inf', now)
          n = redis.call('ZCARD', Q .. 'lk:' .. ck)
        end
        if n >= klimit then ok = false else n = n + 1 end
        counts[ck] = n
      end
      if ok then chosen[#chosen + 1] = m end
    end
  end
  if #chosen > 0 then redis.call('ZREM', Q .. 'ready', unpack(chosen)) end
  for _, m in ipairs(chosen) do
    popped[#popped + 1] = m
    popped[#popped + 1] = 0
  end
else
  popped = redis.call('ZPOPMIN', Q .. 'ready', max)
end
local out, leased, ids, delivered = {}, {}, {}, {}
for k = 1, #popped / 2 do
  local id = string.sub(popped[2 * k - 1], 50)
  delivered[id] = true
  if redis.call('EXISTS', Q .. 'job:' .. id) == 1 then ids[#ids + 1] = id end
end
-- Expired leases taken but not delivered stay expired leases, as on every backend.
local back, orders = {}, {}
for _, c in ipairs(taken) do
  if not delivered[c[1]] then
    orders[#orders + 1] = c[2]
    back[#back + 1] = c[3]
    back[#back + 1] = c[1]
  end
end
if #orders > 0 then
  redis.call('ZREM', Q .. 'ready', unpack(orders))
  redis.call('ZADD', Q .. 'leased', unpack(back))
end
if #ids == 0 then return {exp, out} end
local base = take_tokens(C, #ids)
for k, id in ipairs(ids) do
  local key = Q .. 'job:' .. id
  local f = redis.call('HMGET', key, 'payload', 'priority', 'max', 'enq', 'attempts', 'ckey')
  local attempt = (tonumber(f[5]) or 0) + 1
  local token = int(base + k)
  redis.call('HSET', key, 'state', 'leased', 'token', token, 'exp', exp, 'attempts', attempt)
  if f[6] and f[6] ~= '' then
    redis.call('ZADD', Q .. 'lk:' .. f[6], exp, id)
    redis.call('SADD', Q .. 'lkeys', f[6])
  end
  leased[#leased + 1] = exp
  leased[#leased + 1] = id
  if #leased >= 1000 then
    redis.call('ZADD', Q .. 'leased', unpack(leased))
    leased = {}
  end
  out[k] = {id, f[1], f[2], attempt, f[3], f[4], token}
end
if #leased > 0 then redis.call('ZADD', Q .. 'leased', unpack(leased)) end
return {exp, out}
",
    )
});

/// ARGV: queue prefix, id, token, extension in microseconds. Returns the new expiry,
/// 0 (stale lease) or -1 (cancelled); an expired lease not taken over is live again.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local h = held(Q, key, id, ARGV[3])
if h ~= 1 then return h end
local exp = int(server_now() + tonumber(ARGV[4]))
redis.call('HSET', key, 'exp', exp)
redis.call('ZADD', Q .. 'leased', exp, id)
local ck = redis.call('HGET', key, 'ckey')
if ck and ck ~= '' then redis.call('ZADD', Q .. 'lk:' .. ck, exp, id) end
return exp
",
    )
});

/// ARGV: tenant prefix, count, output ('' = none), then (queue, id, token) per lease.
/// Returns 1 (acked), 0 (stale) or -1 (cancelled) per lease. A job with a keep_for
/// goes to the history with the output (Q15, Q16), any other is deleted. Acked ids
/// leave each queue's leased set in one ZREM per 500.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local P, n, output = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, gone = {}, {}
local now = server_now()
for j = 1, n do
  local a = 4 + (j - 1) * 3
  local Q = P .. 'q:' .. ARGV[a] .. ':'
  local id = ARGV[a + 1]
  local key = Q .. 'job:' .. id
  local h = held(Q, key, id, ARGV[a + 2])
  if h == 1 then
    local f = redis.call('HMGET', key, 'dedup', 'keep')
    if f[2] and f[2] ~= '' then
      -- finish() releases the dedup key too.
      if output ~= '' then redis.call('HSET', key, 'output', output) end
      finish(Q, key, id, 'completed', now)
    else
      unrun(Q, key, id)
      redis.call('DEL', key)
      if f[1] and f[1] ~= '' and redis.call('HGET', Q .. 'dedup', f[1]) == id then
        redis.call('HDEL', Q .. 'dedup', f[1])
      end
    end
    local ids = gone[Q]
    if not ids then ids = {}; gone[Q] = ids end
    ids[#ids + 1] = id
    if #ids >= 500 then
      redis.call('ZREM', Q .. 'leased', unpack(ids))
      gone[Q] = {}
    end
  end
  out[j] = h
end
for Q, ids in pairs(gone) do
  if #ids > 0 then redis.call('ZREM', Q .. 'leased', unpack(ids)) end
end
return out
",
    )
});

/// ARGV: queue prefix, id, token, retry delay in microseconds ('' = dead), error.
/// Returns the retry time or the time of death, 0 (stale lease) or -1 (cancelled).
/// The caller read the attempts under the same token, so they cannot have changed
/// since.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local h = held(Q, key, id, ARGV[3])
if h ~= 1 then return h end
local f = redis.call('HMGET', key, 'state', 'token', 'order', 'priority')
local now = server_now()
redis.call('ZREM', Q .. 'leased', id)
unrun(Q, key, id)
redis.call('HDEL', key, 'token', 'exp')
redis.call('HSET', key, 'err', ARGV[5])
if ARGV[4] ~= '' then
  local at = int(now + tonumber(ARGV[4]))
  local order = reorder(f[3], f[4], at)
  redis.call('HSET', key, 'state', 'ready', 'run_at', at, 'order', order)
  if tonumber(ARGV[4]) <= 0 then
    redis.call('ZADD', Q .. 'ready', 0, order)
  else
    redis.call('ZADD', Q .. 'sched', at, order)
  end
  return at
end
finish(Q, key, id, 'dead', now)
return int(now)
",
    )
});

/// ARGV: queue prefix, id, token, delay in microseconds. Returns the time the job is
/// due again, 0 (stale lease) or -1 (cancelled). The attempt the lease took is given
/// back (Q12).
static SNOOZE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local h = held(Q, key, id, ARGV[3])
if h ~= 1 then return h end
local f = redis.call('HMGET', key, 'state', 'token', 'order', 'priority', 'attempts')
local at = int(server_now() + tonumber(ARGV[4]))
local order = reorder(f[3], f[4], at)
redis.call('ZREM', Q .. 'leased', id)
unrun(Q, key, id)
redis.call('HDEL', key, 'token', 'exp')
redis.call('HSET', key, 'state', 'ready', 'run_at', at, 'order', order, 'attempts', math.max((tonumber(f[5]) or 1) - 1, 0))
if tonumber(ARGV[4]) <= 0 then
  redis.call('ZADD', Q .. 'ready', 0, order)
else
  redis.call('ZADD', Q .. 'sched', at, order)
end
return at
",
    )
});

/// ARGV: queue prefix, id. Returns 1, or 0 (no such dead job).
static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local f = redis.call('HMGET', key, 'order', 'priority', 'dedup')
if not f[1] or redis.call('ZREM', Q .. 'dead', id) == 0 then return 0 end
unfinish(Q, key, id)
local now = int(server_now())
local order = reorder(f[1], f[2], now)
redis.call('HSET', key, 'state', 'ready', 'attempts', 0, 'run_at', now, 'order', order)
redis.call('HDEL', key, 'died')
if f[3] and f[3] ~= '' then redis.call('HSET', Q .. 'dedup', f[3], id) end
redis.call('ZADD', Q .. 'ready', 0, order)
return 1
",
    )
});

/// ARGV: queue prefix, counters, queue set, queue name, id, payload, priority, run_at,
/// max attempts, backoff, dedup key, attempts, last error, died at, keep_for ('' =
/// none), concurrency key ('' = none). Returns 1, or 0 when the id exists.
static IMPORT_DEAD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, C, QS, qname, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = Q .. 'job:' .. id
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('SADD', QS, qname)
local seq = redis.call('HINCRBY', C, 'seq', 1)
local order = order_key(ARGV[7], ARGV[8], seq, id)
redis.call('HSET', key, 'payload', ARGV[6], 'priority', ARGV[7], 'run_at', ARGV[8], 'max', ARGV[9],
  'backoff', ARGV[10], 'dedup', ARGV[11], 'attempts', ARGV[12], 'state', 'dead', 'enq', ARGV[14],
  'order', order, 'err', ARGV[13], 'keep', ARGV[15], 'ckey', ARGV[16])
finish(Q, key, id, 'dead', tonumber(ARGV[14]))
return 1
",
    )
});

/// ARGV: queue prefix. Returns {paused, ready, due, scheduled, expired, running, dead,
/// completed, cancelled}, each an O(1) or O(log n) count of a sorted set.
static STATS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q = ARGV[1]
local now = int(server_now())
return {
  redis.call('EXISTS', Q .. 'paused'),
  redis.call('ZCARD', Q .. 'ready'),
  redis.call('ZCOUNT', Q .. 'sched', '-inf', now),
  redis.call('ZCOUNT', Q .. 'sched', '(' .. now, '+inf'),
  redis.call('ZCOUNT', Q .. 'leased', '-inf', now),
  redis.call('ZCOUNT', Q .. 'leased', '(' .. now, '+inf'),
  redis.call('ZCARD', Q .. 'dead'),
  redis.call('ZCARD', Q .. 'hist:completed'),
  redis.call('ZCARD', Q .. 'hist:cancelled')
}
",
    )
});

/// ARGV: queue prefix. Returns how long until a job may be ready, in microseconds by
/// the server's clock: 0 when one is now, -1 when there is nothing (or the queue is
/// paused, Q11).
static NEXT_READY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q = ARGV[1]
if redis.call('EXISTS', Q .. 'paused') == 1 then return -1 end
if redis.call('ZCARD', Q .. 'ready') > 0 then return 0 end
local best = -1
for _, set in ipairs({'sched', 'leased'}) do
  local first = redis.call('ZRANGE', Q .. set, 0, 0, 'WITHSCORES')
  if first[2] then
    local t = tonumber(first[2])
    if best < 0 or t < best then best = t end
  end
end
if best < 0 then return -1 end
return int(math.max(best - server_now(), 0))
",
    )
});

/// ARGV: queue prefix, id. Returns {code, state}: 1 (a ready job, now cancelled), 2 (a
/// leased job, cancel requested), 0 (no such job) or 3 (finished already, as `state`)
/// (Q14).
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local f = redis.call('HMGET', key, 'state', 'order')
if not f[1] then return {0, ''} end
if f[1] == 'ready' then
  if f[2] then
    redis.call('ZREM', Q .. 'ready', f[2])
    redis.call('ZREM', Q .. 'sched', f[2])
  end
  redis.call('ZREM', Q .. 'sched', id)
  finish(Q, key, id, 'cancelled', server_now())
  return {1, ''}
elseif f[1] == 'leased' then
  redis.call('HSET', key, 'cancel', '1')
  return {2, ''}
end
return {3, f[1]}
",
    )
});

/// ARGV: queue prefix, status, limit. Returns {server time, {id, hash} per job}: up
/// to `limit` jobs of the status in the queue's order for it, each set read for at
/// most `limit` members (Q15).
static JOBS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, status, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = server_now()
local ids = {}
if status == 'pending' then
  local cand = {}
  for _, m in ipairs(redis.call('ZRANGE', Q .. 'ready', 0, limit - 1)) do cand[#cand + 1] = m end
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'sched', '-inf', now, 'LIMIT', 0, limit)) do cand[#cand + 1] = m end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'leased', '-inf', now, 'LIMIT', 0, limit)) do
    local o = redis.call('HGET', Q .. 'job:' .. id, 'order')
    if o then cand[#cand + 1] = o end
  end
  table.sort(cand)
  for k = 1, math.min(#cand, limit) do ids[k] = member_id(cand[k]) end
elseif status == 'scheduled' then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'sched', '(' .. now, '+inf', 'LIMIT', 0, limit)) do ids[#ids + 1] = member_id(m) end
elseif status == 'running' then
  ids = redis.call('ZRANGEBYSCORE', Q .. 'leased', '(' .. now, '+inf', 'LIMIT', 0, limit)
else
  for _, m in ipairs(redis.call('ZRANGEBYLEX', Q .. 'hist:' .. status, '-', '+', 'LIMIT', 0, limit)) do ids[#ids + 1] = hist_id(m) end
end
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = {id, redis.call('HGETALL', Q .. 'job:' .. id)} end
return {int(now), out}
",
    )
});

/// ARGV: queue prefix, max. Returns {key, running} for up to `max` concurrency keys
/// of `lkeys` (all of them while there are no more; a random `max` of them past that),
/// dropping expired leases and keys with none left (Q18).
static RUNNING_BY_KEY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, max = ARGV[1], tonumber(ARGV[2])
local now = server_now()
local out = {}
for _, k in ipairs(redis.call('SRANDMEMBER', Q .. 'lkeys', max)) do
  redis.call('ZREMRANGEBYSCORE', Q .. 'lk:' .. k, '-inf', now)
  local n = redis.call('ZCARD', Q .. 'lk:' .. k)
  if n == 0 then redis.call('SREM', Q .. 'lkeys', k) else out[#out + 1] = {k, n} end
end
return out
",
    )
});

/// ARGV: queue prefix, id, token, progress. Returns 1, 0 (stale lease) or -1
/// (cancelled) (Q16).
static PROGRESS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, id = ARGV[1], ARGV[2]
local key = Q .. 'job:' .. id
local h = held(Q, key, id, ARGV[3])
if h == 1 then redis.call('HSET', key, 'progress', ARGV[4]) end
return h
",
    )
});

/// ARGV: queue prefix, id. Returns {server time, the job's hash as field, value...}
/// (an empty hash for no such job).
static JOB: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
return {int(server_now()), redis.call('HGETALL', ARGV[1] .. 'job:' .. ARGV[2])}
",
    )
});

/// ARGV: queue prefix, state ('' = every finished job), after (finish time and id of
/// the cursor, '' = from the newest), limit. Returns {server time, {id, hash} per job}:
/// at most `limit` members of the history set, read in its order (Q15).
static HISTORY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local Q, state, at, after, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local set = Q .. 'hist'
if state ~= '' then set = set .. ':' .. state end
local min = '-'
if at ~= '' then min = '(' .. hist_key(tonumber(at), after) end
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', set, min, '+', 'LIMIT', 0, limit)) do
  local id = hist_id(m)
  out[#out + 1] = {id, redis.call('HGETALL', Q .. 'job:' .. id)}
end
return {int(server_now()), out}
",
    )
});

/// ARGV: tenant prefix, max. Removes up to `max` finished jobs whose keep_for has
/// passed by the server's clock, oldest due first; returns how many (Q15).
static PRUNE_FINISHED: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local P, max = ARGV[1], tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', P .. 'keep', '-inf', server_now(), 'LIMIT', 0, max)
local n = 0
for _, m in ipairs(due) do
  local qname, id = string.match(m, '^(.*)/([^/]*)$')
  if qname then
    local Q = P .. 'q:' .. qname .. ':'
    local key = Q .. 'job:' .. id
    local st = redis.call('HGET', key, 'state')
    if st == 'completed' or st == 'cancelled' or st == 'dead' then
      unfinish(Q, key, id)
      redis.call('ZREM', Q .. 'dead', id)
      redis.call('DEL', key)
      n = n + 1
    end
  end
  redis.call('ZREM', P .. 'keep', m)
end
return n
",
    )
});

fn num<T: std::str::FromStr>(v: Option<&String>, what: &str) -> Result<T> {
    v.and_then(|s| s.parse().ok()).ok_or_else(|| {
        Error::corrupt(format!(
            "stored job field {what} is missing or not a number"
        ))
    })
}

#[async_trait]
impl JobQueue for RedisStore {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        let keys = self.keys(tenant);
        let mut out: Vec<Option<Result<Enqueued>>> = Vec::with_capacity(jobs.len());
        let mut args: Vec<String> = Vec::new();
        let mut sent = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let checked = self.limit.check_job(job).and_then(|()| {
                let id = job.id.clone().unwrap_or_else(JobId::generate);
                Ok(vec![
                    id.as_str().to_owned(),
                    encode(&job.payload, "job payload")?,
                    job.priority.to_string(),
                    job.run_at
                        .map(|t| t.as_micros().to_string())
                        .unwrap_or_default(),
                    job.delay_micros().to_string(),
                    job.max_attempts.to_string(),
                    encode(&job.backoff, "backoff")?,
                    job.dedup_key.clone().unwrap_or_default(),
                    if job.id.is_some() { "1" } else { "0" }.to_owned(),
                    job.keep_for_micros()
                        .map(|k| k.to_string())
                        .unwrap_or_default(),
                    job.unique_for_micros().to_string(),
                    job.concurrency_key.clone().unwrap_or_default(),
                ])
            });
            match checked {
                Ok(fields) => {
                    args.extend(fields);
                    sent.push(i);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        if !sent.is_empty() {
            let replies: Vec<(i64, String)> = ENQUEUE
                .prepare_invoke()
                .arg(keys.queue(queue))
                .arg(keys.counters())
                .arg(keys.queues())
                .arg(queue.as_str())
                .arg(sent.len())
                .arg(args)
                .invoke_async(&mut self.conn())
                .await
                .op("queue.enqueue")?;
            for (i, (code, id)) in sent.into_iter().zip(replies) {
                let job_id: JobId = stored_id(id, "job id")?;
                out[i] = Some(match code {
                    0 => Err(kit::job_taken(&job_id, queue)),
                    c => Ok(Enqueued {
                        job_id,
                        deduplicated: c == 2,
                    }),
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::backend("a job got no result"))))
            .collect())
    }

    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        req.validate()?;
        let keys = self.keys(tenant);
        type Row = (String, String, i32, u32, u32, i64, u64);
        let (expires, rows): (i64, Vec<Row>) = DEQUEUE
            .prepare_invoke()
            .arg(keys.queue(queue))
            .arg(keys.counters())
            .arg(req.max)
            .arg(micros(req.lease_for))
            .arg(takeback_limit(req.max))
            .arg(promote_limit(req.max))
            .arg(req.key_limit.map(|n| n.to_string()).unwrap_or_default())
            .arg(req.queue_limit.map(|n| n.to_string()).unwrap_or_default())
            .arg(limited_scan(req.max))
            .invoke_async(&mut self.conn())
            .await
            .op("queue.dequeue")?;
        let expires_at = Timestamp::from_micros(expires);
        let mut out = Vec::with_capacity(rows.len());
        for (id, payload, priority, attempt, max_attempts, enq, token) in rows {
            let job_id: JobId = stored_id(id, "job id")?;
            match decode(&payload, "job payload") {
                Ok(payload) => out.push(LeasedJob {
                    lease: Lease {
                        queue: queue.clone(),
                        job_id,
                        token,
                        expires_at,
                    },
                    payload,
                    priority,
                    attempt,
                    max_attempts,
                    enqueued_at: Timestamp::from_micros(enq),
                }),
                Err(e) => {
                    // A damaged job is never delivered and never blocks the queue: it
                    // goes to the dead letters with the reason (W10).
                    tracing::warn!(%tenant, %queue, job = %job_id, error = %e, "a damaged job is moved to the dead letters");
                    let _: i64 = FAIL
                        .prepare_invoke()
                        .arg(keys.queue(queue))
                        .arg(job_id.as_str())
                        .arg(token)
                        .arg("")
                        .arg(format!("damaged: {}", e.message()))
                        .invoke_async(&mut self.conn())
                        .await
                        .op("queue.dequeue")?;
                }
            }
        }
        Ok(out)
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        let expires: i64 = HEARTBEAT
            .prepare_invoke()
            .arg(self.keys(tenant).queue(&lease.queue))
            .arg(lease.job_id.as_str())
            .arg(lease.token)
            .arg(micros(extend_by))
            .invoke_async(&mut self.conn())
            .await
            .op("queue.heartbeat")?;
        let expires = held(expires, lease)?;
        Ok(Lease {
            expires_at: Timestamp::from_micros(expires),
            ..lease.clone()
        })
    }

    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        self.ack_with(tenant, leases, "", "queue.ack").await
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome> {
        self.limit.check_failure(&failure)?;
        let qkey = self.keys(tenant).queue(&lease.queue);
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(format!("{qkey}job:{}", lease.job_id))
            .arg(&["state", "token", "attempts", "max", "backoff"])
            .query_async(&mut self.conn())
            .await
            .op("queue.fail")?;
        let get = |i: usize| fields.get(i).and_then(Option::as_ref);
        if get(0).map(String::as_str) != Some("leased") || get(1) != Some(&lease.token.to_string())
        {
            return Err(lease.stale());
        }
        let attempts: u32 = num(get(2), "attempts")?;
        let max: u32 = num(get(3), "max")?;
        let backoff: Backoff = decode(get(4).map_or("", String::as_str), "backoff")?;
        // The delay is the caller's arithmetic; the time it counts from is the server's.
        let retry_in = (failure.retry && attempts < max)
            .then(|| micros(backoff.delay_after(attempts)).to_string());
        let at: i64 = FAIL
            .prepare_invoke()
            .arg(&qkey)
            .arg(lease.job_id.as_str())
            .arg(lease.token)
            .arg(retry_in.clone().unwrap_or_default())
            .arg(&failure.error)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.fail")?;
        match (held(at, lease)?, retry_in) {
            (at, Some(_)) => Ok(FailOutcome::Retrying {
                at: Timestamp::from_micros(at),
            }),
            (_, None) => Ok(FailOutcome::Dead),
        }
    }

    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let qkey = self.keys(tenant).queue(queue);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{qkey}dead"))
            .arg(0)
            .arg(limit - 1)
            .query_async(&mut self.conn())
            .await
            .op("queue.dead")?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(format!("{qkey}job:{id}"))
                .arg(&["payload", "attempts", "err", "died"]);
        }
        let rows: Vec<Vec<Option<String>>> =
            pipe.query_async(&mut self.conn()).await.op("queue.dead")?;
        ids.into_iter()
            .zip(rows)
            .map(|(id, f)| {
                let get = |i: usize| f.get(i).and_then(Option::as_ref);
                Ok(DeadJob {
                    job_id: stored_id(id, "job id")?,
                    payload: decode(get(0).map_or("", String::as_str), "job payload")?,
                    attempts: num(get(1), "attempts")?,
                    last_error: get(2).cloned().unwrap_or_default(),
                    died_at: Timestamp::from_micros(num(get(3), "died")?),
                })
            })
            .collect()
    }

    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        let done: i64 = REQUEUE
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(job.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.requeue")?;
        if done == 0 {
            return Err(Error::not_found(format!(
                "no dead job {job} in queue {queue}"
            )));
        }
        Ok(())
    }

    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        let c: Vec<u64> = STATS
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .invoke_async(&mut self.conn())
            .await
            .op("queue.stats")?;
        let at = |i: usize| c.get(i).copied().unwrap_or(0);
        Ok(QueueStats {
            pending: at(1) + at(2) + at(4),
            scheduled: at(3),
            running: at(5),
            dead: at(6),
            completed: at(7),
            cancelled: at(8),
            paused: at(0) == 1,
        })
    }

    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let qkey = self.keys(tenant).queue(queue);
        loop {
            // How long until something is ready, by the server's clock.
            let until: i64 = NEXT_READY
                .prepare_invoke()
                .arg(&qkey)
                .invoke_async(&mut self.conn())
                .await
                .op("queue.wait")?;
            if until == 0 {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let due = u64::try_from(until).ok().map(Duration::from_micros);
            let pause = [Some(WAIT_POLL), Some(left), due]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(WAIT_POLL);
            tokio::time::sleep(pause).await;
        }
    }

    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<storage_ports::AckedAndLeased> {
        // Two scripts, two round trips. One pipeline would be one, but a script the
        // server no longer caches (after a restart) fails there without telling
        // whether the other ran, and an ack or a lease must not be repeated blind.
        storage_ports::queue::ack_then_dequeue(self, tenant, done, queue, next).await
    }

    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        redis::cmd("SET")
            .arg(format!("{}paused", self.keys(tenant).queue(queue)))
            .arg(1)
            .exec_async(&mut self.conn())
            .await
            .op("queue.pause")
    }

    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        redis::cmd("DEL")
            .arg(format!("{}paused", self.keys(tenant).queue(queue)))
            .exec_async(&mut self.conn())
            .await
            .op("queue.resume")
    }

    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp> {
        storage_ports::queue::check_snooze(delay)?;
        let at: i64 = SNOOZE
            .prepare_invoke()
            .arg(self.keys(tenant).queue(&lease.queue))
            .arg(lease.job_id.as_str())
            .arg(lease.token)
            .arg(micros(delay))
            .invoke_async(&mut self.conn())
            .await
            .op("queue.snooze")?;
        Ok(Timestamp::from_micros(held(at, lease)?))
    }

    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome> {
        let reply: (i64, String) = CANCEL
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(job.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.cancel")?;
        match reply {
            (1, _) => Ok(CancelOutcome::Cancelled),
            (2, _) => Ok(CancelOutcome::Requested),
            (3, state) => Err(storage_ports::queue::finished_error(job, &state)),
            _ => Err(Error::not_found(format!("no job {job} in queue {queue}"))),
        }
    }

    async fn progress(&self, tenant: &TenantId, lease: &Lease, progress: Value) -> Result<()> {
        self.limit.check("job progress", &progress)?;
        let done: i64 = PROGRESS
            .prepare_invoke()
            .arg(self.keys(tenant).queue(&lease.queue))
            .arg(lease.job_id.as_str())
            .arg(lease.token)
            .arg(encode(&progress, "job progress")?)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.progress")?;
        held(done, lease).map(drop)
    }

    async fn complete(&self, tenant: &TenantId, lease: &Lease, output: Value) -> Result<()> {
        self.limit.check("job output", &output)?;
        let output = encode(&output, "job output")?;
        self.ack_with(
            tenant,
            std::slice::from_ref(lease),
            &output,
            "queue.complete",
        )
        .await?
        .pop()
        .unwrap_or_else(|| Err(Error::backend("ack returned no result")))
    }

    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo> {
        let (now, fields): (i64, HashMap<String, String>) = JOB
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(job.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.job")?;
        if fields.is_empty() {
            return Err(Error::not_found(format!("no job {job} in queue {queue}")));
        }
        info_of(job.as_str().to_owned(), &fields, queue, now)
    }

    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>> {
        let after = query.position()?;
        let limit = query.page.effective_limit();
        let (at, after_id) = after.map_or((String::new(), String::new()), |(at, id)| {
            (at.to_string(), id)
        });
        let (now, rows): (i64, Vec<(String, HashMap<String, String>)>) = HISTORY
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(query.state.map_or("", FinishedState::as_str))
            .arg(at)
            .arg(after_id)
            .arg(limit + 1)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.history")?;
        let read = rows.len();
        let last_read = rows
            .last()
            .and_then(|(id, f)| Some((f.get("fin")?.parse::<i64>().ok()?, id.clone())));
        let (items, damaged) = storage_ports::adapter_kit::readable(
            rows.into_iter()
                .filter(|(_, f)| !f.is_empty())
                .map(|(id, f)| info_of(id, &f, queue, now)),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, %queue, error = %e, "a damaged job is left out of the history");
        }
        Ok(Page::from_readable(
            HistoryQuery::CURSOR_KIND,
            items,
            read,
            limit,
            JobInfo::history_position,
            last_read,
        ))
    }

    async fn prune_finished(&self, tenant: &TenantId, max: usize) -> Result<u64> {
        storage_ports::queue::check_prune_batch(max)?;
        PRUNE_FINISHED
            .prepare_invoke()
            .arg(self.keys(tenant).prefix())
            .arg(max)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.prune_finished")
    }

    async fn jobs(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<JobInfo>> {
        storage_ports::queue::check_jobs_limit(limit)?;
        let (now, rows): (i64, Vec<(String, HashMap<String, String>)>) = JOBS
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(status.as_str())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.jobs")?;
        let (items, damaged) = storage_ports::adapter_kit::readable(
            rows.into_iter()
                .filter(|(_, f)| !f.is_empty())
                .map(|(id, f)| info_of(id, &f, queue, now)),
        )?;
        for e in damaged {
            tracing::warn!(%tenant, %queue, error = %e, "a damaged job is left out of the listing");
        }
        // A job can move between sets while it is read; only the asked status counts.
        Ok(items.into_iter().filter(|i| i.status == status).collect())
    }

    async fn running_by_key(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
    ) -> Result<Vec<(String, u64)>> {
        let counts: Vec<(String, u64)> = RUNNING_BY_KEY
            .prepare_invoke()
            .arg(self.keys(tenant).queue(queue))
            .arg(storage_ports::queue::MAX_RUNNING_KEYS)
            .invoke_async(&mut self.conn())
            .await
            .op("queue.running_by_key")?;
        Ok(storage_ports::queue::busiest_first(counts))
    }

    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}job:{job}", self.keys(tenant).queue(queue)))
            .query_async(&mut self.conn())
            .await
            .op("queue.reenqueue")?;
        if !fields.contains_key("fin") && !fields.contains_key("died") {
            return Err(Error::not_found(format!(
                "no finished job {job} in queue {queue}"
            )));
        }
        let original = exported_of(job.as_str().to_owned(), &fields, queue)?.job;
        self.enqueue(tenant, queue, storage_ports::queue::reenqueued(&original))
            .await
    }
}

impl RedisStore {
    /// Acks `leases` in one script call, each job with `output` ('' = none) when it is
    /// kept in the history.
    async fn ack_with(
        &self,
        tenant: &TenantId,
        leases: &[Lease],
        output: &str,
        op: &'static str,
    ) -> Result<Vec<Result<()>>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = ACK.prepare_invoke();
        call.arg(self.keys(tenant).prefix())
            .arg(leases.len())
            .arg(output);
        for l in leases {
            call.arg(l.queue.as_str())
                .arg(l.job_id.as_str())
                .arg(l.token);
        }
        let done: Vec<i64> = call.invoke_async(&mut self.conn()).await.op(op)?;
        Ok(leases
            .iter()
            .zip(done.into_iter().chain(std::iter::repeat(0)))
            .map(|(l, d)| held(d, l).map(drop))
            .collect())
    }
}

/// A fenced script's answer: its value, or the lease's stale (0) or cancelled (-1)
/// error.
fn held(code: i64, lease: &Lease) -> Result<i64> {
    match code {
        0 => Err(lease.stale()),
        -1 => Err(storage_ports::queue::cancelled_error(&lease.job_id)),
        v => Ok(v),
    }
}

/// A job's hash as the queue tells it, its status on the server's clock `now`.
fn info_of(
    id: String,
    f: &HashMap<String, String>,
    queue: &QueueName,
    now: i64,
) -> Result<JobInfo> {
    let state = f.get("state").map_or("", String::as_str);
    let status = match state {
        "ready" if num::<i64>(f.get("run_at"), "run_at")? > now => JobStatus::Scheduled,
        "ready" => JobStatus::Pending,
        "leased" if num::<i64>(f.get("exp"), "exp")? > now => JobStatus::Running,
        "leased" => JobStatus::Pending,
        other => FinishedState::parse(other)
            .map_err(|_| Error::corrupt(format!("stored job state {other:?}")))?
            .status(),
    };
    let json = |field: &str, what: &str| -> Result<Option<Value>> {
        f.get(field)
            .filter(|t| !t.is_empty())
            .map(|t| decode(t, what))
            .transpose()
    };
    Ok(JobInfo {
        queue: queue.clone(),
        job_id: stored_id(id, "job id")?,
        payload: decode(f.get("payload").map_or("", String::as_str), "job payload")?,
        priority: num(f.get("priority"), "priority")?,
        attempts: num(f.get("attempts"), "attempts")?,
        max_attempts: num(f.get("max"), "max")?,
        enqueued_at: Timestamp::from_micros(num(f.get("enq"), "enq")?),
        // A dead job written before the history existed has only its time of death.
        finished_at: ["fin", "died"]
            .into_iter()
            .find(|k| f.contains_key(*k))
            .map(|k| num(f.get(k), k).map(Timestamp::from_micros))
            .transpose()?,
        progress: json("progress", "job progress")?,
        output: json("output", "job output")?,
        last_error: f.get("err").filter(|e| !e.is_empty()).cloned(),
        cancel_requested: f.get("cancel").map(String::as_str) == Some("1"),
        scheduled_for: if status == JobStatus::Scheduled {
            Some(Timestamp::from_micros(num(f.get("run_at"), "run_at")?))
        } else {
            None
        },
        lease_expires_at: if status == JobStatus::Running {
            Some(Timestamp::from_micros(num(f.get("exp"), "exp")?))
        } else {
            None
        },
        status,
    })
}

/// A job's hash as an export record.
fn exported_of(id: String, f: &HashMap<String, String>, queue: &QueueName) -> Result<ExportedJob> {
    let job = NewJob {
        id: Some(stored_id(id, "job id")?),
        payload: decode(f.get("payload").map_or("", String::as_str), "job payload")?,
        priority: num(f.get("priority"), "priority")?,
        run_at: Some(Timestamp::from_micros(num(f.get("run_at"), "run_at")?)),
        delay: None,
        max_attempts: num(f.get("max"), "max")?,
        backoff: decode(f.get("backoff").map_or("", String::as_str), "backoff")?,
        dedup_key: f.get("dedup").filter(|d| !d.is_empty()).cloned(),
        unique_for: None,
        concurrency_key: f.get("ckey").filter(|k| !k.is_empty()).cloned(),
        keep_for: f
            .get("keep")
            .filter(|k| !k.is_empty())
            .map(|_| num::<u64>(f.get("keep"), "keep").map(Duration::from_micros))
            .transpose()?,
    };
    let dead = if f.get("state").map(String::as_str) == Some("dead") {
        Some(DeadState {
            attempts: num(f.get("attempts"), "attempts")?,
            last_error: f.get("err").cloned().unwrap_or_default(),
            died_at: Timestamp::from_micros(num(f.get("died"), "died")?),
        })
    } else {
        None
    };
    Ok(ExportedJob {
        queue: queue.clone(),
        job,
        dead,
    })
}

#[async_trait]
impl JobTransfer for RedisStore {
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>> {
        let keys = self.keys(tenant);
        let queues: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys.queues())
            .query_async(&mut self.conn())
            .await
            .op("queue.export")?;
        let mut out: Vec<(String, String, ExportedJob)> = Vec::new();
        for qname in queues {
            let queue: QueueName = stored_id(qname, "queue name")?;
            let qkey = keys.queue(&queue);
            let (ready, sched, leased, dead): (Vec<String>, Vec<String>, Vec<String>, Vec<String>) =
                redis::pipe()
                    .cmd("ZRANGE")
                    .arg(format!("{qkey}ready"))
                    .arg(0)
                    .arg(-1)
                    .cmd("ZRANGE")
                    .arg(format!("{qkey}sched"))
                    .arg(0)
                    .arg(-1)
                    .cmd("ZRANGE")
                    .arg(format!("{qkey}leased"))
                    .arg(0)
                    .arg(-1)
                    .cmd("ZRANGE")
                    .arg(format!("{qkey}dead"))
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut self.conn())
                    .await
                    .op("queue.export")?;
            let id_of = |m: &String| match m.get(ORDER_ID_AT - 1..ORDER_ID_AT) {
                Some("|") => m.get(ORDER_ID_AT..).unwrap_or_default().to_owned(),
                _ => m.clone(),
            };
            let ids: Vec<String> = ready
                .iter()
                .chain(sched.iter())
                .map(id_of)
                .chain(leased)
                .chain(dead)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL").arg(format!("{qkey}job:{id}"));
            }
            let rows: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.conn())
                .await
                .op("queue.export")?;
            for (id, f) in ids.into_iter().zip(rows) {
                if f.is_empty() {
                    continue;
                }
                let order = f.get("order").cloned().unwrap_or_default();
                let decoded = exported_of(id, &f, &queue);
                let job = match decoded {
                    Ok(job) => job,
                    Err(e) if e.kind() == ErrorKind::CorruptData => {
                        tracing::warn!(%tenant, %queue, error = %e, "a damaged job is left out of the export");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // Enqueue order is the sequence inside the order key.
                let seq = order.get(29..48).unwrap_or_default().to_owned();
                out.push((queue.as_str().to_owned(), seq, job));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(out.into_iter().map(|(_, _, j)| j).collect())
    }

    async fn import_dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: NewJob,
        dead: DeadState,
    ) -> Result<()> {
        self.limit.check_job(&job)?;
        self.limit.check_dead(&dead)?;
        let id = job.imported_id()?.clone();
        let keys = self.keys(tenant);
        let run_at = job.run_at.unwrap_or(dead.died_at);
        let done: i64 = IMPORT_DEAD
            .prepare_invoke()
            .arg(keys.queue(queue))
            .arg(keys.counters())
            .arg(keys.queues())
            .arg(queue.as_str())
            .arg(id.as_str())
            .arg(encode(&job.payload, "job payload")?)
            .arg(job.priority)
            .arg(run_at.as_micros())
            .arg(job.max_attempts)
            .arg(encode(&job.backoff, "backoff")?)
            .arg(job.dedup_key.clone().unwrap_or_default())
            .arg(dead.attempts)
            .arg(&dead.last_error)
            .arg(dead.died_at.as_micros())
            .arg(
                job.keep_for_micros()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
            )
            .arg(job.concurrency_key.clone().unwrap_or_default())
            .invoke_async(&mut self.conn())
            .await
            .op("queue.import_dead")?;
        if done == 0 {
            return Err(kit::job_taken(&id, queue));
        }
        Ok(())
    }
}
