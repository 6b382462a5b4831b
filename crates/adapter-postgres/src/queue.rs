//! The job queue in PostgreSQL (Q1-Q10).
//!
//! - Dequeue is one statement: it marks jobs whose lease expired on their last
//!   attempt dead, picks the best ready jobs (and those whose lease expired) with
//!   `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait for each other nor
//!   take the same job, and leases them with a fresh fencing token from a sequence.
//! - Enqueue and ack of a batch are one statement each, over arrays.
//! - Waiters wake on `LISTEN flowstore_queue` (see `listener.rs`), and re-check every
//!   second in case a notification was lost with a connection.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    Backoff, DeadJob, DeadState, Dequeue, Enqueued, Error, ExportedJob, FailOutcome, JobFailure,
    JobId, JobQueue, Lease, LeasedJob, NewJob, QueueName, QueueStats, Result, TenantId, Timestamp,
};
use storage_ports::{CancelOutcome, FinishedState, HistoryQuery, JobInfo, JobStatus, Page};
use storage_ports::{ErrorKind, JobTransfer};

use chrono::{DateTime, Utc};

use crate::error::SqlxResultExt;
use crate::runs::json_text;
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;
use storage_ports::adapter_kit::{stored_id, stored_u32, to_i64};
use storage_ports::rules::lease::{limited_scan, takeback_limit};

/// The part of both dequeue statements that takes back expired leases (the oldest
/// `$5`): those on their last attempt die, those whose cancel was asked for are
/// finished as cancelled (Q14), the rest (`expired WHERE NOT last AND NOT
/// cancel_requested`) compete with the ready jobs. `$cols` are extra columns of the
/// expired rows. A paused queue (Q11) takes nothing back.
macro_rules! takeback_ctes {
    ($cols:literal) => {
        concat!(
            "WITH expired AS ( \
               SELECT ctid, priority, run_at, seq", $cols, ", attempts >= max_attempts AS last, cancel_requested FROM flowstore_jobs \
               WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'leased' AND lease_expires <= now() \
               AND NOT EXISTS (SELECT 1 FROM flowstore_paused_queues p WHERE p.tenant = $1 AND p.queue = $2) \
               ORDER BY lease_expires, job_id LIMIT $5 FOR UPDATE SKIP LOCKED), \
             dead AS ( \
               UPDATE flowstore_jobs SET state = 'dead', died_at = now(), finished_at = now(), \
                 keep_until = now() + keep_for * interval '1 microsecond', token = NULL, lease_expires = NULL, \
                 last_error = 'lease expired on attempt ' || attempts || ' of ' || max_attempts \
               WHERE ctid = ANY(ARRAY(SELECT ctid FROM expired WHERE last AND NOT cancel_requested))), \
             cancelled AS ( \
               UPDATE flowstore_jobs SET state = 'cancelled', finished_at = now(), \
                 keep_until = now() + keep_for * interval '1 microsecond', token = NULL, lease_expires = NULL \
               WHERE ctid = ANY(ARRAY(SELECT ctid FROM expired WHERE cancel_requested))), "
        )
    };
}

/// The end of both dequeue statements: lease the `picked` rows with fresh fencing
/// tokens for `$4` microseconds on the server's clock.
macro_rules! lease_picked {
    () => {
        "UPDATE flowstore_jobs j SET state = 'leased', token = nextval('flowstore_lease_token'), \
           lease_expires = now() + $4 * interval '1 microsecond', attempts = j.attempts + 1 \
         WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM picked)) \
         RETURNING j.job_id, j.payload, j.priority, j.attempts, j.max_attempts, j.enqueued_at, j.token, j.run_at, j.seq, j.lease_expires"
    };
}

/// The dequeue statement, public so that an operator (and the reliability run) can
/// `EXPLAIN ANALYZE` exactly what a dequeue runs. $1 tenant, $2 queue, $3 the batch,
/// $4 the lease in microseconds, $5 the take-back limit
/// (`storage_ports::rules::lease::takeback_limit` of the batch). A paused queue (Q11)
/// takes nothing back and delivers nothing.
///
/// An expired lease of a job whose cancel was asked for is finished as cancelled
/// instead (Q14).
pub const DEQUEUE_STATEMENT: &str = concat!(
    takeback_ctes!(""),
    "ready AS ( \
       SELECT ctid, priority, run_at, seq FROM flowstore_jobs \
       WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'ready' AND run_at + interval '0 s' <= now() \
       AND NOT EXISTS (SELECT 1 FROM flowstore_paused_queues p WHERE p.tenant = $1 AND p.queue = $2) \
       ORDER BY priority DESC, run_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED), \
     picked AS ( \
       SELECT ctid FROM (SELECT * FROM ready UNION ALL SELECT ctid, priority, run_at, seq FROM expired WHERE NOT last AND NOT cancel_requested) c \
       ORDER BY priority DESC, run_at, seq LIMIT $3) ",
    lease_picked!()
);

/// The dequeue statement with concurrency limits (Q18): [`DEQUEUE_STATEMENT`] plus
/// the running jobs per concurrency key and in all, and a window of `$6`
/// candidates (`storage_ports::rules::lease::limited_scan`) ranked within their key, of
/// which those that keep their key within `$7` (NULL: no key limit) are leased, at most
/// `$3` and as many as keep the queue within `$8` (NULL: no queue limit). It runs after
/// the queue's advisory lock, in the same transaction, so that limited claims of one
/// queue take turns and each counts the leases of the one before. The window is read
/// without row locks (locking every candidate cost more than the claim): a row that an
/// unlimited dequeue leases meanwhile fails the final UPDATE's re-check (its ctid has
/// moved), so it is skipped, never leased twice.
pub const LIMITED_DEQUEUE_STATEMENT: &str = concat!(
    takeback_ctes!(", concurrency_key"),
    "running AS ( \
       SELECT concurrency_key, count(*) AS n FROM flowstore_jobs \
       WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'leased' AND lease_expires > now() \
       GROUP BY concurrency_key), \
     ready AS ( \
       SELECT ctid, priority, run_at, seq, concurrency_key FROM flowstore_jobs \
       WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'ready' AND run_at + interval '0 s' <= now() \
       AND NOT EXISTS (SELECT 1 FROM flowstore_paused_queues p WHERE p.tenant = $1 AND p.queue = $2) \
       ORDER BY priority DESC, run_at, seq LIMIT $6), \
     ranked AS ( \
       SELECT c.*, row_number() OVER (PARTITION BY c.concurrency_key ORDER BY c.priority DESC, c.run_at, c.seq) AS rn \
       FROM (SELECT * FROM ready UNION ALL SELECT ctid, priority, run_at, seq, concurrency_key FROM expired WHERE NOT last AND NOT cancel_requested) c), \
     picked AS ( \
       SELECT r.ctid FROM ranked r LEFT JOIN running u ON u.concurrency_key = r.concurrency_key \
       WHERE r.concurrency_key IS NULL OR $7::int8 IS NULL OR coalesce(u.n, 0) + r.rn <= $7::int8 \
       ORDER BY r.priority DESC, r.run_at, r.seq \
       LIMIT greatest(least($3, coalesce($8::int8 - (SELECT coalesce(sum(n), 0) FROM running), $3)), 0)) ",
    lease_picked!()
);

/// The columns [`info_of`] reads, the status decided on the server's clock (a macro,
/// so statements stay literals).
macro_rules! info_columns {
    () => {
        "job_id, payload, priority, attempts, max_attempts, enqueued_at, finished_at, progress, output, last_error, cancel_requested, run_at, lease_expires, \
         CASE WHEN state = 'ready' AND run_at > now() THEN 'scheduled' WHEN state = 'ready' THEN 'pending' \
              WHEN state = 'leased' AND lease_expires > now() THEN 'running' WHEN state = 'leased' THEN 'pending' \
              ELSE state END AS status"
    };
}

/// How often a waiter re-checks even without a notification.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// The columns of the jobs a batch sends, as arrays for `UNNEST`.
#[derive(Default)]
struct JobColumns {
    ids: Vec<String>,
    payload: Vec<String>,
    priority: Vec<i32>,
    /// `None`: due now by the server's clock.
    run_at: Vec<Option<DateTime<Utc>>>,
    max_attempts: Vec<i64>,
    backoff: Vec<String>,
    /// Added to the server's clock when `run_at` is `None`.
    delay_us: Vec<i64>,
    /// How long a finished job stays in the history, in microseconds (Q15).
    keep_for: Vec<Option<i64>>,
    /// Concurrency keys (Q18).
    concurrency_key: Vec<Option<String>>,
}

impl JobColumns {
    /// `sql` with what both enqueue statements take first bound: $1 tenant, $2 queue,
    /// $3..$8 the columns; the delays and the keep_for are returned to bind where
    /// the statement wants.
    #[allow(clippy::type_complexity)]
    fn bound<'q>(
        self,
        sql: &'static str,
        tenant: &'q TenantId,
        queue: &'q QueueName,
    ) -> (
        sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        (Vec<i64>, Vec<Option<i64>>, Vec<Option<String>>),
    ) {
        let q = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(self.ids)
            .bind(self.payload)
            .bind(self.priority)
            .bind(self.run_at)
            .bind(self.max_attempts)
            .bind(self.backoff);
        (q, (self.delay_us, self.keep_for, self.concurrency_key))
    }
}

/// Enqueues checked jobs in one statement (shared with T1). Results are in order.
///
/// A batch with unique periods (Q17) first takes a transaction-scoped advisory lock
/// per such key, in one statement and in a fixed order: enqueuers of one key then take
/// turns, and each one's statement snapshot, taken after the lock, sees what the one
/// before stored, and any job with the key that finished meanwhile. Without periods
/// the unique index on live jobs is enough.
pub(crate) async fn enqueue_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    jobs: Vec<NewJob>,
) -> Result<Vec<Result<Enqueued>>> {
    let mut unique: Vec<&str> = jobs
        .iter()
        .filter(|j| j.unique_for.is_some())
        .filter_map(|j| j.dedup_key.as_deref())
        .collect();
    if unique.is_empty() {
        return enqueue_unlocked(conn, tenant, queue, jobs).await;
    }
    unique.sort_unstable();
    unique.dedup();
    // A savepoint inside a caller's transaction (T1), a transaction otherwise.
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .op("queue.enqueue")?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(h) FROM ( \
           SELECT DISTINCT hashtextextended($1 || '/' || $2 || '/' || k, 17) AS h FROM UNNEST($3::text[]) AS k \
           ORDER BY h) AS keys",
    )
    .bind(tenant.as_str())
    .bind(queue.as_str())
    .bind(&unique)
    .execute(&mut *tx)
    .await
    .op("queue.enqueue")?;
    let out = enqueue_unlocked(&mut tx, tenant, queue, jobs).await?;
    tx.commit().await.op("queue.enqueue")?;
    Ok(out)
}

async fn enqueue_unlocked(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    jobs: Vec<NewJob>,
) -> Result<Vec<Result<Enqueued>>> {
    // Within the batch, the first job with a deduplication key wins (Q8).
    let mut first_with_key: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::with_capacity(jobs.len());
    let mut cols = JobColumns::default();
    let mut dedup = Vec::new();
    let mut pending: Vec<Option<Result<Enqueued>>> = Vec::with_capacity(jobs.len());
    let mut aliases: Vec<(usize, usize)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let id = job.id.clone().unwrap_or_else(JobId::generate);
        ids.push(id.clone());
        if let Some(k) = &job.dedup_key {
            if let Some(&first) = first_with_key.get(k) {
                // Resolved below to whatever the first one became.
                aliases.push((i, first));
                pending.push(Some(Err(Error::backend("unresolved duplicate in batch"))));
                continue;
            }
            first_with_key.insert(k.clone(), i);
        }
        let texts = json_text(&job.payload, "job payload")
            .and_then(|p| Ok((p, json_text(&job.backoff, "backoff")?)));
        match texts {
            Ok((p, b)) => {
                cols.ids.push(id.as_str().to_owned());
                cols.payload.push(p);
                cols.priority.push(job.priority);
                cols.run_at.push(job.run_at.map(to_pg).transpose()?);
                cols.max_attempts.push(i64::from(job.max_attempts));
                cols.backoff.push(b);
                cols.delay_us.push(job.delay_micros());
                cols.keep_for.push(job.keep_for_micros());
                cols.concurrency_key.push(job.concurrency_key.clone());
                dedup.push(job.dedup_key.clone());
                pending.push(None);
            }
            Err(e) => pending.push(Some(Err(e))),
        }
    }
    if cols.ids.is_empty() {
        let out = pending.into_iter().flatten().collect();
        return resolve_aliases(conn, tenant, queue, &jobs, &aliases, out).await;
    }
    // A batch of jobs that name no id and no deduplication key cannot conflict (ids are
    // generated, 128 random bits): a plain INSERT does, without the speculative
    // insertion ON CONFLICT costs (about a third of the statement) and without
    // returning the ids we already know.
    if first_with_key.is_empty() && jobs.iter().all(|j| j.id.is_none()) {
        let (insert, (delays, keep, ckeys)) = cols.bound(
            "INSERT INTO flowstore_jobs (tenant, queue, job_id, payload, priority, run_at, max_attempts, backoff, state, enqueued_at, keep_for, concurrency_key) \
             SELECT $1, $2, j.job_id, j.payload::jsonb, j.priority, COALESCE(j.run_at, now() + j.delay_us * interval '1 microsecond'), j.max_attempts, j.backoff::jsonb, 'ready', now(), j.keep_for, j.ckey \
             FROM UNNEST($3::text[], $4::text[], $5::int4[], $6::timestamptz[], $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::text[]) \
               WITH ORDINALITY AS j(job_id, payload, priority, run_at, max_attempts, backoff, delay_us, keep_for, ckey, ord) \
             ORDER BY j.ord",
            tenant,
            queue,
        );
        insert
            .bind(delays)
            .bind(keep)
            .bind(ckeys)
            .execute(&mut *conn)
            .await
            .op("queue.enqueue")?;
        return Ok(pending
            .into_iter()
            .zip(ids)
            .map(|(p, job_id)| {
                p.unwrap_or(Ok(Enqueued {
                    job_id,
                    deduplicated: false,
                }))
            })
            .collect());
    }
    // The jobs already holding the batch's keys: per key, the live one through the
    // live dedup index, else (with a unique period) the newest finished one through
    // the finished index. Two lateral lookups, because one join with an OR over both
    // made PostgreSQL read every job of the queue (found by P3-unique).
    let keys: Vec<String> = first_with_key.keys().cloned().collect();
    let periods: Vec<i64> = keys
        .iter()
        .map(|k| {
            first_with_key
                .get(k)
                .map_or(0, |&i| jobs[i].unique_for_micros())
        })
        .collect();
    let (insert, (delays, keep, ckeys)) = cols.bound(
        "WITH existing AS ( \
           SELECT DISTINCT ON (c.key) c.key AS dedup_key, c.job_id FROM ( \
             SELECT k.key, l.job_id, 1 AS live, NULL::timestamptz AS fin \
             FROM UNNEST($10::text[], $13::int8[]) AS k(key, period) CROSS JOIN LATERAL ( \
               SELECT job_id FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND dedup_key = k.key \
               AND state IN ('ready', 'leased') LIMIT 1) l \
             UNION ALL \
             SELECT k.key, d.job_id, 0, d.finished_at \
             FROM UNNEST($10::text[], $13::int8[]) AS k(key, period) CROSS JOIN LATERAL ( \
               SELECT job_id, finished_at FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND dedup_key = k.key \
               AND finished_at IS NOT NULL AND state IN ('completed', 'dead') \
               AND finished_at >= now() - k.period * interval '1 microsecond' ORDER BY finished_at DESC LIMIT 1) d \
             WHERE k.period > 0) c \
           ORDER BY c.key, c.live DESC, c.fin DESC NULLS LAST), \
         ins AS ( \
           INSERT INTO flowstore_jobs (tenant, queue, job_id, payload, priority, run_at, max_attempts, backoff, dedup_key, state, enqueued_at, keep_for, concurrency_key) \
           SELECT $1, $2, j.job_id, j.payload::jsonb, j.priority, COALESCE(j.run_at, now() + j.delay_us * interval '1 microsecond'), j.max_attempts, j.backoff::jsonb, j.dedup_key, 'ready', now(), j.keep_for, j.ckey \
           FROM UNNEST($3::text[], $4::text[], $5::int4[], $6::timestamptz[], $7::int8[], $8::text[], $9::text[], $11::int8[], $12::int8[], $14::text[]) \
             WITH ORDINALITY AS j(job_id, payload, priority, run_at, max_attempts, backoff, dedup_key, delay_us, keep_for, ckey, ord) \
           WHERE j.dedup_key IS NULL OR j.dedup_key NOT IN (SELECT dedup_key FROM existing) \
           ORDER BY j.ord \
           ON CONFLICT DO NOTHING RETURNING job_id) \
         SELECT job_id, NULL::text AS dedup_key FROM ins \
         UNION ALL SELECT job_id, dedup_key FROM existing",
        tenant,
        queue,
    );
    let rows = insert
        .bind(&dedup)
        .bind(&keys)
        .bind(delays)
        .bind(keep)
        .bind(&periods)
        .bind(ckeys)
        .fetch_all(&mut *conn)
        .await
        .op("queue.enqueue")?;
    let mut inserted = HashSet::new();
    let mut existing: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let id: String = r.try_get("job_id").op("queue.decode")?;
        match r
            .try_get::<Option<String>, _>("dedup_key")
            .op("queue.decode")?
        {
            Some(k) => {
                existing.insert(k, id);
            }
            None => {
                inserted.insert(id);
            }
        }
    }
    let mut out = Vec::with_capacity(pending.len());
    let mut sent = 0;
    for (i, p) in pending.into_iter().enumerate() {
        if let Some(done) = p {
            out.push(done);
            continue;
        }
        let key = dedup[sent].clone();
        sent += 1;
        let id = &ids[i];
        if inserted.contains(id.as_str()) {
            out.push(Ok(Enqueued {
                job_id: id.clone(),
                deduplicated: false,
            }));
            continue;
        }
        let holder = match (&key, key.as_ref().and_then(|k| existing.get(k))) {
            (_, Some(other)) => Some(other.clone()),
            // Not inserted and not seen as a duplicate: either the id is taken, or a
            // concurrent enqueue took the key after our snapshot.
            (Some(k), None) => {
                let period = first_with_key
                    .get(k)
                    .map_or(0, |&f| jobs[f].unique_for_micros());
                job_with_key(&mut *conn, tenant, queue, k, period).await?
            }
            (None, None) => None,
        };
        out.push(match holder {
            Some(other) => Ok(Enqueued {
                job_id: stored_id(other, "job id")?,
                deduplicated: true,
            }),
            None => Err(kit::job_taken(id, queue)),
        });
    }
    resolve_aliases(conn, tenant, queue, &jobs, &aliases, out).await
}

/// A job whose deduplication key an earlier job of the same batch carried gets what
/// that job became: the job it was stored as or deduplicated onto. When that one was
/// refused (its id was taken), this one is enqueued on its own, as if the batch had
/// been sent one job at a time.
async fn resolve_aliases(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    jobs: &[NewJob],
    aliases: &[(usize, usize)],
    mut out: Vec<Result<Enqueued>>,
) -> Result<Vec<Result<Enqueued>>> {
    for &(i, first) in aliases {
        let holder = out
            .get(first)
            .and_then(|r| r.as_ref().ok())
            .map(|e| e.job_id.clone());
        out[i] = match holder {
            Some(job_id) => Ok(Enqueued {
                job_id,
                deduplicated: true,
            }),
            None => {
                let alone =
                    Box::pin(enqueue_in(conn, tenant, queue, vec![jobs[i].clone()])).await?;
                alone
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Err(Error::backend("enqueue returned no result")))
            }
        };
    }
    Ok(out)
}

/// The job an enqueue with `key` (and a unique period of `period` microseconds, 0 for
/// none) is a duplicate of: the live one, else the newest that finished within it.
async fn job_with_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    key: &str,
    period: i64,
) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT job_id FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND dedup_key = $3 AND (state IN ('ready', 'leased') OR ($4 > 0 AND state IN ('completed', 'dead') AND finished_at >= now() - $4 * interval '1 microsecond')) ORDER BY state IN ('ready', 'leased') DESC, finished_at DESC LIMIT 1")
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(key)
        .bind(period)
        .fetch_optional(conn)
        .await
        .op("queue.enqueue")
}

fn leased_of(row: &PgRow, queue: &QueueName) -> Result<(LeasedJob, (DateTime<Utc>, i64))> {
    let expires_at = from_pg(row.try_get("lease_expires").op("queue.decode")?);
    let token: i64 = row.try_get("token").op("queue.decode")?;
    let Json(payload): Json<Value> = row.try_get("payload").op("queue.decode")?;
    let order = (
        row.try_get::<DateTime<Utc>, _>("run_at")
            .op("queue.decode")?,
        row.try_get::<i64, _>("seq").op("queue.decode")?,
    );
    Ok((
        LeasedJob {
            lease: Lease {
                queue: queue.clone(),
                job_id: stored_id(row.try_get("job_id").op("queue.decode")?, "job id")?,
                token: u64::try_from(token).unwrap_or(0),
                expires_at,
            },
            payload,
            priority: row.try_get("priority").op("queue.decode")?,
            attempt: stored_u32(row.try_get("attempts").op("queue.decode")?, "attempts")?,
            max_attempts: stored_u32(
                row.try_get("max_attempts").op("queue.decode")?,
                "max attempts",
            )?,
            enqueued_at: from_pg(row.try_get("enqueued_at").op("queue.decode")?),
        },
        order,
    ))
}

/// One dequeue statement on `conn` (and, for a damaged job, its move to the dead
/// letters), so that `ack_and_dequeue` can run it in its transaction.
async fn dequeue_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    req: &Dequeue,
) -> Result<Vec<LeasedJob>> {
    if req.is_limited() {
        // A savepoint inside ack_and_dequeue's transaction, a transaction otherwise.
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .op("queue.dequeue")?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('flowstore-limits/' || $1 || '/' || $2, 17))")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .execute(&mut *tx)
            .await
            .op("queue.dequeue")?;
        let rows = sqlx::query(LIMITED_DEQUEUE_STATEMENT)
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(to_i64(req.max as u64))
            .bind(micros(req.lease_for))
            .bind(to_i64(takeback_limit(req.max) as u64))
            .bind(to_i64(limited_scan(req.max) as u64))
            .bind(req.key_limit.map(i64::from))
            .bind(req.queue_limit.map(i64::from))
            .fetch_all(&mut *tx)
            .await
            .op("queue.dequeue")?;
        let out = leased_rows(&mut tx, tenant, queue, &rows).await?;
        tx.commit().await.op("queue.dequeue")?;
        return Ok(out);
    }
    let rows = sqlx::query(DEQUEUE_STATEMENT)
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(to_i64(req.max as u64))
        .bind(micros(req.lease_for))
        .bind(to_i64(takeback_limit(req.max) as u64))
        .fetch_all(&mut *conn)
        .await
        .op("queue.dequeue")?;
    leased_rows(conn, tenant, queue, &rows).await
}

/// The leases of a dequeue's rows, best first; a damaged job among them goes to the
/// dead letters.
async fn leased_rows(
    conn: &mut PgConnection,
    tenant: &TenantId,
    queue: &QueueName,
    rows: &[PgRow],
) -> Result<Vec<LeasedJob>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match leased_of(row, queue) {
            Ok(job) => out.push(job),
            Err(e) if e.kind() == ErrorKind::CorruptData => {
                // A damaged job is never delivered and never blocks the queue: it
                // goes to the dead letters with the reason (W10). One whose id
                // cannot be read stays leased and dies when its attempts run out.
                let id: String = row.try_get("job_id").op("queue.decode")?;
                tracing::warn!(%tenant, %queue, job = %id, error = %e, "a damaged job is moved to the dead letters");
                sqlx::query("UPDATE flowstore_jobs SET state = 'dead', died_at = now(), finished_at = now(), keep_until = now() + keep_for * interval '1 microsecond', token = NULL, lease_expires = NULL, last_error = $1 WHERE tenant = $2 AND queue = $3 AND job_id = $4")
                    .bind(format!("damaged: {}", e.message()))
                    .bind(tenant.as_str())
                    .bind(queue.as_str())
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .op("queue.dequeue")?;
            }
            Err(e) => return Err(e),
        }
    }
    // RETURNING has no order: deliver best first, as picked.
    out.sort_by(|a, b| b.0.priority.cmp(&a.0.priority).then(a.1.cmp(&b.1)));
    Ok(out.into_iter().map(|(j, _)| j).collect())
}

/// Why a fenced write changed nothing: the job's cancel was asked for (then it is
/// finished as cancelled here, and the holder told so, Q14), or the lease is stale.
async fn not_held<'e, E>(exec: E, tenant: &TenantId, lease: &Lease) -> Error
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let done = sqlx::query("UPDATE flowstore_jobs SET state = 'cancelled', finished_at = now(), keep_until = now() + keep_for * interval '1 microsecond', token = NULL, lease_expires = NULL WHERE tenant = $1 AND queue = $2 AND job_id = $3 AND state = 'leased' AND token = $4 AND cancel_requested")
        .bind(tenant.as_str())
        .bind(lease.queue.as_str())
        .bind(lease.job_id.as_str())
        .bind(to_i64(lease.token))
        .execute(exec)
        .await
        .op("queue.lease");
    match done {
        Ok(d) if d.rows_affected() == 1 => storage_ports::queue::cancelled_error(&lease.job_id),
        Ok(_) => lease.stale(),
        Err(e) => e,
    }
}

/// Acknowledges `leases` (not empty) on `conn`: jobs without `keep_for` are deleted in
/// one statement; jobs with it go to the history with `output` in a second one, sent
/// only when some lease was not acknowledged by the first (Q15, Q16).
async fn ack_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    leases: &[Lease],
    output: Option<&str>,
) -> Result<Vec<Result<()>>> {
    let queues: Vec<&str> = leases.iter().map(|l| l.queue.as_str()).collect();
    let ids: Vec<&str> = leases.iter().map(|l| l.job_id.as_str()).collect();
    let tokens: Vec<i64> = leases.iter().map(|l| to_i64(l.token)).collect();
    // The job is found by its token (`flowstore_jobs_lease_token`, exact whatever
    // the statistics); tenant, queue and id are checked on the row found. They are
    // written `|| ''` so that PostgreSQL cannot use them as a primary key prefix:
    // with a queue grown past its statistics it chose a scan of the tenant's
    // whole queue for `tenant = $1` and hash-joined the leases against it.
    let rows = sqlx::query("DELETE FROM flowstore_jobs j USING UNNEST($2::text[], $3::text[], $4::int8[]) AS a(queue, job_id, token) \
         WHERE j.token = ANY($4::int8[]) AND j.state = 'leased' AND j.token = a.token \
           AND j.tenant || '' = $1 AND j.queue || '' = a.queue AND j.job_id || '' = a.job_id \
           AND NOT j.cancel_requested AND j.keep_for IS NULL \
         RETURNING j.token")
        .bind(tenant.as_str())
        .bind(&queues)
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&mut *conn)
        .await
        .op("queue.ack")?;
    // Tokens are unique store-wide, so the token alone names the acknowledged lease.
    // A lease named twice in the batch acks once: its later mentions find it gone,
    // as a second call would.
    let mut acked: HashSet<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("token").op("queue.decode"))
        .collect::<Result<_>>()?;
    if acked.len() < leases.len() {
        let kept = sqlx::query("UPDATE flowstore_jobs j SET state = 'completed', output = $5::jsonb, finished_at = now(), \
               keep_until = now() + j.keep_for * interval '1 microsecond', token = NULL, lease_expires = NULL \
             FROM UNNEST($2::text[], $3::text[], $4::int8[]) AS a(queue, job_id, token) \
             WHERE j.token = ANY($4::int8[]) AND j.state = 'leased' AND j.token = a.token \
               AND j.tenant || '' = $1 AND j.queue || '' = a.queue AND j.job_id || '' = a.job_id \
               AND NOT j.cancel_requested \
             RETURNING a.token")
            .bind(tenant.as_str())
            .bind(&queues)
            .bind(&ids)
            .bind(&tokens)
            .bind(output)
            .fetch_all(&mut *conn)
            .await
            .op("queue.ack")?;
        for r in &kept {
            acked.insert(r.try_get::<i64, _>("token").op("queue.decode")?);
        }
    }
    let mut out = Vec::with_capacity(leases.len());
    for l in leases {
        out.push(if acked.remove(&to_i64(l.token)) {
            Ok(())
        } else {
            Err(not_held(&mut *conn, tenant, l).await)
        });
    }
    Ok(out)
}

#[async_trait]
impl JobQueue for PostgresStore {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        let mut checked = Vec::with_capacity(jobs.len());
        let mut refused: Vec<Option<Error>> = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.limit.check_job(&job) {
                Ok(()) => {
                    checked.push(job);
                    refused.push(None);
                }
                Err(e) => refused.push(Some(e)),
            }
        }
        let mut conn = self.pool.acquire().await.op("queue.enqueue")?;
        let mut done = enqueue_in(&mut conn, tenant, queue, checked)
            .await?
            .into_iter();
        Ok(refused
            .into_iter()
            .map(|r| match r {
                Some(e) => Err(e),
                None => done
                    .next()
                    .unwrap_or_else(|| Err(Error::backend("an enqueued job got no result"))),
            })
            .collect())
    }

    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        req.validate()?;
        // Every time here is the server's (`now()`, the statement's start): which jobs
        // are due, whose lease expired, who dies, and when the new leases expire. A
        // node whose clock is off takes no live lease and sees no job early.
        // The queue benchmark found three ways PostgreSQL read the whole queue on every
        // dequeue when a queue had grown past its statistics (P3 at 50,000 jobs fell to
        // 0.8k-2.7k jobs/s). Each part of this statement now has one plan:
        // - lookups are keyed on `tenant || '/' || queue`, an expression only the
        //   ready and leased indexes serve (schema 3), never a primary key prefix;
        // - `run_at + interval '0 s' <= $3` is a filter, not an index condition: as a condition on
        //   the ready index (estimated 1 row) it made a bitmap scan of every ready job
        //   plus a sort look cheaper than reading the index in order;
        // - the picked rows reach the UPDATE by ctid, a TID scan (they are locked by
        //   this very statement, so their ctid holds): joined on the key, the generic
        //   plan hash-joined a sequential scan of every job.
        // The oldest `takeback_limit` expired leases are taken (storage_ports::rules::
        // lease): last attempts among them die, the others compete with the ready jobs.
        // The leased index yields them in expiry order, so a backlog of expired leases
        // costs a dequeue a bounded read; a filter on attempts in that scan read the
        // whole backlog to find none (105 ms a dequeue at 200,000, docs/reliability.md).
        let mut conn = self.pool.acquire().await.op("queue.dequeue")?;
        dequeue_in(&mut conn, tenant, queue, &req).await
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        // Extended from the server's clock, and the new expiry is the server's.
        let expires: Option<DateTime<Utc>> = sqlx::query_scalar("UPDATE flowstore_jobs SET lease_expires = now() + $1 * interval '1 microsecond' WHERE tenant = $2 AND queue = $3 AND job_id = $4 AND state = 'leased' AND token = $5 AND NOT cancel_requested RETURNING lease_expires")
            .bind(micros(extend_by))
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(to_i64(lease.token))
            .fetch_optional(&self.pool)
            .await
            .op("queue.heartbeat")?;
        let Some(expires) = expires else {
            return Err(not_held(&self.pool, tenant, lease).await);
        };
        Ok(Lease {
            expires_at: from_pg(expires),
            ..lease.clone()
        })
    }

    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.op("queue.ack")?;
        ack_in(&mut conn, tenant, leases, None).await
    }

    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<storage_ports::AckedAndLeased> {
        next.validate()?;
        // One transaction: one commit, so one WAL flush, for the acks and the leases.
        let mut tx = self.pool.begin().await.op("queue.ack_and_dequeue")?;
        let acked = if done.is_empty() {
            Vec::new()
        } else {
            ack_in(&mut tx, tenant, done, None).await?
        };
        let leased = dequeue_in(&mut tx, tenant, queue, &next).await?;
        tx.commit().await.op("queue.ack_and_dequeue")?;
        Ok(storage_ports::AckedAndLeased { acked, leased })
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        failure: JobFailure,
    ) -> Result<FailOutcome> {
        self.limit.check_failure(&failure)?;
        let mut tx = self.pool.begin().await.op("queue.fail")?;
        let row = sqlx::query("SELECT attempts, max_attempts, backoff, cancel_requested FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND job_id = $3 AND state = 'leased' AND token = $4 FOR UPDATE")
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(to_i64(lease.token))
            .fetch_optional(&mut *tx)
            .await
            .op("queue.fail")?
            .ok_or_else(|| lease.stale())?;
        if row
            .try_get::<bool, _>("cancel_requested")
            .op("queue.decode")?
        {
            let e = not_held(&mut *tx, tenant, lease).await;
            tx.commit().await.op("queue.fail")?;
            return Err(e);
        }
        let attempts = stored_u32(row.try_get("attempts").op("queue.decode")?, "attempts")?;
        let max = stored_u32(
            row.try_get("max_attempts").op("queue.decode")?,
            "max attempts",
        )?;
        let Json(backoff): Json<Backoff> = row.try_get("backoff").op("queue.decode")?;
        // The retry time and the death time are the server's clock plus the backoff.
        let retry_after =
            (failure.retry && attempts < max).then(|| micros(backoff.delay_after(attempts)));
        let (state, run_at): (String, DateTime<Utc>) = sqlx::query_as(
            "UPDATE flowstore_jobs SET \
               state = CASE WHEN $1::bigint IS NULL THEN 'dead' ELSE 'ready' END, \
               run_at = CASE WHEN $1::bigint IS NULL THEN run_at ELSE now() + $1 * interval '1 microsecond' END, \
               died_at = CASE WHEN $1::bigint IS NULL THEN now() END, \
               finished_at = CASE WHEN $1::bigint IS NULL THEN now() END, \
               keep_until = CASE WHEN $1::bigint IS NULL THEN now() + keep_for * interval '1 microsecond' END, \
               last_error = $2, token = NULL, lease_expires = NULL \
             WHERE tenant = $3 AND queue = $4 AND job_id = $5 RETURNING state, run_at",
        )
        .bind(retry_after)
        .bind(&failure.error)
        .bind(tenant.as_str())
        .bind(lease.queue.as_str())
        .bind(lease.job_id.as_str())
        .fetch_one(&mut *tx)
        .await
        .op("queue.fail")?;
        let outcome = if state == "ready" {
            FailOutcome::Retrying {
                at: from_pg(run_at),
            }
        } else {
            FailOutcome::Dead
        };
        tx.commit().await.op("queue.fail")?;
        Ok(outcome)
    }

    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        let rows = sqlx::query("SELECT job_id, payload, attempts, last_error, died_at FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND state = 'dead' ORDER BY died_at, job_id LIMIT $3")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(to_i64(limit as u64))
            .fetch_all(&self.pool)
            .await
            .op("queue.dead")?;
        rows.iter()
            .map(|r| {
                let Json(payload) = r.try_get("payload").op("queue.decode")?;
                Ok(DeadJob {
                    job_id: stored_id(r.try_get("job_id").op("queue.decode")?, "job id")?,
                    payload,
                    attempts: stored_u32(r.try_get("attempts").op("queue.decode")?, "attempts")?,
                    last_error: r
                        .try_get::<Option<String>, _>("last_error")
                        .op("queue.decode")?
                        .unwrap_or_default(),
                    died_at: r
                        .try_get::<Option<DateTime<Utc>>, _>("died_at")
                        .op("queue.decode")?
                        .map_or(Timestamp::from_micros(0), from_pg),
                })
            })
            .collect()
    }

    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        let done = sqlx::query("UPDATE flowstore_jobs SET state = 'ready', attempts = 0, run_at = now(), token = NULL, lease_expires = NULL, died_at = NULL, finished_at = NULL, keep_until = NULL WHERE tenant = $1 AND queue = $2 AND job_id = $3 AND state = 'dead'")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(job.as_str())
            .execute(&self.pool)
            .await
            .op("queue.requeue")?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!(
                "no dead job {job} in queue {queue}"
            )));
        }
        Ok(())
    }

    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE state = 'dead') AS dead, \
               COUNT(*) FILTER (WHERE state = 'completed') AS completed, \
               COUNT(*) FILTER (WHERE state = 'cancelled') AS cancelled, \
               COUNT(*) FILTER (WHERE state = 'leased' AND lease_expires > now()) AS running, \
               COUNT(*) FILTER (WHERE state = 'ready' AND run_at > now()) AS scheduled, \
               COUNT(*) FILTER (WHERE (state = 'ready' AND run_at <= now()) OR (state = 'leased' AND lease_expires <= now())) AS pending, \
               EXISTS (SELECT 1 FROM flowstore_paused_queues WHERE tenant = $1 AND queue = $2) AS paused \
             FROM flowstore_jobs WHERE tenant = $1 AND queue = $2",
        )
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .fetch_one(&self.pool)
        .await
        .op("queue.stats")?;
        let n = |c: &str| -> Result<u64> {
            Ok(u64::try_from(row.try_get::<i64, _>(c).op("queue.stats")?).unwrap_or(0))
        };
        Ok(QueueStats {
            pending: n("pending")?,
            scheduled: n("scheduled")?,
            running: n("running")?,
            dead: n("dead")?,
            completed: n("completed")?,
            cancelled: n("cancelled")?,
            paused: row.try_get::<bool, _>("paused").op("queue.stats")?,
        })
    }

    async fn wait(&self, tenant: &TenantId, queue: &QueueName, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.queue_changed.subscribe();
        loop {
            changes.borrow_and_update();
            // How long until the earliest job becomes ready by the server's clock (zero
            // or less: now), if any.
            // No row at all while the queue is paused (Q11): nothing to wake for.
            let until: Option<i64> = sqlx::query_scalar(
                "SELECT (EXTRACT(epoch FROM LEAST( \
                   (SELECT MIN(run_at) FROM flowstore_jobs WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'ready'), \
                   (SELECT MIN(lease_expires) FROM flowstore_jobs WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'leased')) \
                   - now()) * 1000000)::bigint \
                 WHERE NOT EXISTS (SELECT 1 FROM flowstore_paused_queues WHERE tenant = $1 AND queue = $2)",
            )
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .fetch_optional(&self.pool)
            .await
            .op("queue.wait")?
            .flatten();
            if until.is_some_and(|us| us <= 0) {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let due = until.map(|us| {
                tokio::time::Instant::now() + Duration::from_micros(u64::try_from(us).unwrap_or(0))
            });
            let wake = [
                Some(deadline),
                due,
                Some(tokio::time::Instant::now() + WAIT_POLL),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
            let _ = tokio::time::timeout_at(wake, changes.changed()).await;
        }
    }

    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        sqlx::query("INSERT INTO flowstore_paused_queues (tenant, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .execute(&self.pool)
            .await
            .op("queue.pause")?;
        Ok(())
    }

    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        // The notification wakes the waiters of every node.
        sqlx::query("WITH gone AS (DELETE FROM flowstore_paused_queues WHERE tenant = $1 AND queue = $2 RETURNING 1) SELECT pg_notify('flowstore_queue', $1 || '/' || $2)")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .execute(&self.pool)
            .await
            .op("queue.resume")?;
        Ok(())
    }

    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp> {
        storage_ports::queue::check_snooze(delay)?;
        // Fenced by the token; the time is the server's, and the attempt the lease
        // took is given back.
        let at: Option<DateTime<Utc>> = sqlx::query_scalar("UPDATE flowstore_jobs SET state = 'ready', run_at = now() + $1 * interval '1 microsecond', attempts = GREATEST(attempts - 1, 0), token = NULL, lease_expires = NULL WHERE tenant = $2 AND queue = $3 AND job_id = $4 AND state = 'leased' AND token = $5 AND NOT cancel_requested RETURNING run_at")
            .bind(micros(delay))
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(to_i64(lease.token))
            .fetch_optional(&self.pool)
            .await
            .op("queue.snooze")?;
        match at {
            Some(at) => Ok(from_pg(at)),
            None => Err(not_held(&self.pool, tenant, lease).await),
        }
    }

    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome> {
        // One statement, a compare-and-set on the state read under the row's lock: a
        // ready job is finished as cancelled, a leased one gets the request.
        // A data-modifying WITH runs whether or not the outer SELECT reads it.
        let row: Option<String> = sqlx::query_scalar(
            "WITH old AS (SELECT state FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND job_id = $3 FOR UPDATE), \
             done AS (UPDATE flowstore_jobs j SET \
                 state = CASE WHEN o.state = 'ready' THEN 'cancelled' ELSE j.state END, \
                 finished_at = CASE WHEN o.state = 'ready' THEN now() ELSE j.finished_at END, \
                 keep_until = CASE WHEN o.state = 'ready' THEN now() + j.keep_for * interval '1 microsecond' ELSE j.keep_until END, \
                 cancel_requested = j.cancel_requested OR o.state = 'leased' \
               FROM old o WHERE j.tenant = $1 AND j.queue = $2 AND j.job_id = $3 AND o.state IN ('ready', 'leased')) \
             SELECT state FROM old",
        )
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(job.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("queue.cancel")?;
        match row {
            None => Err(Error::not_found(format!("no job {job} in queue {queue}"))),
            Some(state) if state == "ready" => Ok(CancelOutcome::Cancelled),
            Some(state) if state == "leased" => Ok(CancelOutcome::Requested),
            Some(state) => Err(storage_ports::queue::finished_error(job, &state)),
        }
    }

    async fn progress(&self, tenant: &TenantId, lease: &Lease, progress: Value) -> Result<()> {
        self.limit.check("job progress", &progress)?;
        let done = sqlx::query("UPDATE flowstore_jobs SET progress = $1::jsonb WHERE tenant = $2 AND queue = $3 AND job_id = $4 AND state = 'leased' AND token = $5 AND NOT cancel_requested")
            .bind(json_text(&progress, "job progress")?)
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(to_i64(lease.token))
            .execute(&self.pool)
            .await
            .op("queue.progress")?;
        if done.rows_affected() == 0 {
            return Err(not_held(&self.pool, tenant, lease).await);
        }
        Ok(())
    }

    async fn complete(&self, tenant: &TenantId, lease: &Lease, output: Value) -> Result<()> {
        self.limit.check("job output", &output)?;
        let text = json_text(&output, "job output")?;
        let mut conn = self.pool.acquire().await.op("queue.complete")?;
        ack_in(&mut conn, tenant, std::slice::from_ref(lease), Some(&text))
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::backend("ack returned no result")))
    }

    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo> {
        let row = sqlx::query(concat!(
            "SELECT ",
            info_columns!(),
            " FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND job_id = $3"
        ))
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(job.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("queue.job")?
        .ok_or_else(|| Error::not_found(format!("no job {job} in queue {queue}")))?;
        info_of(&row, queue)
    }

    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>> {
        let limit = query.page.effective_limit();
        let (at, id) = match query.position()? {
            Some((at, id)) => (Some(to_pg(Timestamp::from_micros(at))?), Some(id)),
            None => (None, None),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            info_columns!(),
            " FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND finished_at IS NOT NULL \
             AND ($3::text IS NULL OR state = $3) AND ($4::timestamptz IS NULL OR (finished_at, job_id) < ($4, $5::text)) \
             ORDER BY finished_at DESC, job_id DESC LIMIT $6"
        ))
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(query.state.map(FinishedState::as_str))
        .bind(at)
        .bind(id)
        .bind(to_i64(limit as u64 + 1))
        .fetch_all(&self.pool)
        .await
        .op("queue.history")?;
        let last_read = rows.last().and_then(|r| {
            Some((
                from_pg(r.try_get::<DateTime<Utc>, _>("finished_at").ok()?).as_micros(),
                r.try_get::<String, _>("job_id").ok()?,
            ))
        });
        let (items, damaged) =
            storage_ports::adapter_kit::readable(rows.iter().map(|r| info_of(r, queue)))?;
        for e in damaged {
            tracing::warn!(%tenant, %queue, error = %e, "a damaged job is left out of the history");
        }
        Ok(Page::from_readable(
            HistoryQuery::CURSOR_KIND,
            items,
            rows.len(),
            limit,
            JobInfo::history_position,
            last_read,
        ))
    }

    async fn prune_finished(&self, tenant: &TenantId, max: usize) -> Result<u64> {
        storage_ports::queue::check_prune_batch(max)?;
        // Bounded by `max`, oldest due first; rows another pruner holds are skipped.
        let done = sqlx::query(
            "DELETE FROM flowstore_jobs WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM flowstore_jobs WHERE tenant = $1 AND keep_until <= now() \
               ORDER BY keep_until LIMIT $2 FOR UPDATE SKIP LOCKED))",
        )
        .bind(tenant.as_str())
        .bind(to_i64(max as u64))
        .execute(&self.pool)
        .await
        .op("queue.prune_finished")?;
        Ok(done.rows_affected())
    }

    async fn jobs(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<JobInfo>> {
        storage_ports::queue::check_jobs_limit(limit)?;
        macro_rules! listing {
            ($where:literal, $order:literal) => {
                concat!(
                    "SELECT ",
                    info_columns!(),
                    " FROM flowstore_jobs WHERE tenant || '/' || queue = $1 || '/' || $2 AND ",
                    $where,
                    " ORDER BY ",
                    $order,
                    " LIMIT $3"
                )
            };
        }
        let sql = match status {
            JobStatus::Pending => listing!(
                "((state = 'ready' AND run_at <= now()) OR (state = 'leased' AND lease_expires <= now()))",
                "priority DESC, run_at, seq"
            ),
            JobStatus::Scheduled => listing!("state = 'ready' AND run_at > now()", "run_at, seq"),
            JobStatus::Running => listing!(
                "state = 'leased' AND lease_expires > now()",
                "lease_expires, job_id"
            ),
            JobStatus::Completed | JobStatus::Cancelled | JobStatus::Dead => listing!(
                "state = $4 AND finished_at IS NOT NULL",
                "finished_at DESC, job_id DESC"
            ),
        };
        let listing = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(i64::try_from(limit).unwrap_or(1000));
        let listing = if status.is_finished() {
            listing.bind(status.as_str())
        } else {
            listing
        };
        let rows = listing.fetch_all(&self.pool).await.op("queue.jobs")?;
        let (items, damaged) =
            storage_ports::adapter_kit::readable(rows.iter().map(|r| info_of(r, queue)))?;
        for e in damaged {
            tracing::warn!(%tenant, %queue, error = %e, "a damaged job is left out of the listing");
        }
        Ok(items)
    }

    async fn running_by_key(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
    ) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT concurrency_key, count(*) AS n FROM flowstore_jobs \
             WHERE tenant || '/' || queue = $1 || '/' || $2 AND state = 'leased' AND lease_expires > now() \
             AND concurrency_key IS NOT NULL GROUP BY concurrency_key")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .fetch_all(&self.pool)
            .await
            .op("queue.running_by_key")?;
        let counts = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("concurrency_key")
                        .op("queue.decode")?,
                    u64::try_from(r.try_get::<i64, _>("n").op("queue.decode")?).unwrap_or(0),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(storage_ports::queue::busiest_first(counts))
    }

    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued> {
        let mut tx = self.pool.begin().await.op("queue.reenqueue")?;
        let row = sqlx::query("SELECT payload, priority, max_attempts, backoff, dedup_key, keep_for, concurrency_key FROM flowstore_jobs WHERE tenant = $1 AND queue = $2 AND job_id = $3 AND finished_at IS NOT NULL")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(job.as_str())
            .fetch_optional(&mut *tx)
            .await
            .op("queue.reenqueue")?
            .ok_or_else(|| Error::not_found(format!("no finished job {job} in queue {queue}")))?;
        let Json(payload) = row.try_get("payload").op("queue.decode")?;
        let Json(backoff) = row.try_get("backoff").op("queue.decode")?;
        let original = NewJob {
            id: None,
            payload,
            priority: row.try_get("priority").op("queue.decode")?,
            run_at: None,
            delay: None,
            max_attempts: stored_u32(
                row.try_get("max_attempts").op("queue.decode")?,
                "max attempts",
            )?,
            backoff,
            dedup_key: row.try_get("dedup_key").op("queue.decode")?,
            unique_for: None,
            concurrency_key: row.try_get("concurrency_key").op("queue.decode")?,
            keep_for: keep_for_of(row.try_get("keep_for").op("queue.decode")?),
        };
        let out = enqueue_in(
            &mut tx,
            tenant,
            queue,
            vec![storage_ports::queue::reenqueued(&original)],
        )
        .await?
        .pop()
        .unwrap_or_else(|| Err(Error::backend("enqueue returned no result")))?;
        tx.commit().await.op("queue.reenqueue")?;
        Ok(out)
    }
}

#[async_trait]
impl JobTransfer for PostgresStore {
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>> {
        let rows = sqlx::query("SELECT queue, job_id, payload, priority, run_at, max_attempts, backoff, dedup_key, state, attempts, last_error, died_at, keep_for, concurrency_key FROM flowstore_jobs WHERE tenant = $1 AND state IN ('ready', 'leased', 'dead') ORDER BY queue, seq")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .op("queue.export")?;
        let decoded = rows.iter().map(|r| {
            let Json(payload) = r.try_get("payload").op("queue.decode")?;
            let Json(backoff) = r.try_get("backoff").op("queue.decode")?;
            Ok(ExportedJob {
                queue: stored_id(r.try_get("queue").op("queue.decode")?, "queue name")?,
                job: NewJob {
                    id: Some(stored_id(
                        r.try_get("job_id").op("queue.decode")?,
                        "job id",
                    )?),
                    payload,
                    priority: r.try_get("priority").op("queue.decode")?,
                    run_at: Some(from_pg(r.try_get("run_at").op("queue.decode")?)),
                    delay: None,
                    max_attempts: stored_u32(
                        r.try_get("max_attempts").op("queue.decode")?,
                        "max attempts",
                    )?,
                    backoff,
                    dedup_key: r.try_get("dedup_key").op("queue.decode")?,
                    unique_for: None,
                    concurrency_key: r.try_get("concurrency_key").op("queue.decode")?,
                    keep_for: keep_for_of(r.try_get("keep_for").op("queue.decode")?),
                },
                dead: DeadState::of_row(
                    &r.try_get::<String, _>("state").op("queue.decode")?,
                    stored_u32(r.try_get("attempts").op("queue.decode")?, "attempts")?,
                    r.try_get("last_error").op("queue.decode")?,
                    r.try_get::<Option<DateTime<Utc>>, _>("died_at")
                        .op("queue.decode")?
                        .map(|d| from_pg(d).as_micros()),
                ),
            })
        });
        let (jobs, damaged) = storage_ports::adapter_kit::readable(decoded)?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged job is left out of the export");
        }
        Ok(jobs)
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
        let done = sqlx::query("INSERT INTO flowstore_jobs (tenant, queue, job_id, payload, priority, run_at, max_attempts, backoff, dedup_key, attempts, state, last_error, died_at, enqueued_at, keep_for, finished_at, keep_until, concurrency_key) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, $9, $10, 'dead', $11, $12, $12, $13, $12, $12 + $13 * interval '1 microsecond', $14) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(id.as_str())
            .bind(json_text(&job.payload, "job payload")?)
            .bind(job.priority)
            .bind(to_pg(job.run_at.unwrap_or(dead.died_at))?)
            .bind(i64::from(job.max_attempts))
            .bind(json_text(&job.backoff, "backoff")?)
            .bind(job.dedup_key.as_deref())
            .bind(i64::from(dead.attempts))
            .bind(&dead.last_error)
            .bind(to_pg(dead.died_at)?)
            .bind(job.keep_for_micros())
            .bind(job.concurrency_key.as_deref())
            .execute(&self.pool)
            .await
            .op("queue.import_dead")?;
        if done.rows_affected() == 0 {
            return Err(kit::job_taken(&id, queue));
        }
        Ok(())
    }
}

/// A stored `keep_for` in microseconds as a duration.
fn keep_for_of(micros: Option<i64>) -> Option<Duration> {
    micros.map(|m| Duration::from_micros(u64::try_from(m).unwrap_or(0)))
}

/// A job row as `job` and `history` show it.
fn info_of(row: &PgRow, queue: &QueueName) -> Result<JobInfo> {
    let status: String = row.try_get("status").op("queue.decode")?;
    let Json(payload): Json<Value> = row.try_get("payload").op("queue.decode")?;
    let status = JobStatus::parse(&status)
        .map_err(|_| Error::corrupt(format!("stored job state {status:?}")))?;
    let at = |c: &str| -> Result<Option<Timestamp>> {
        Ok(row
            .try_get::<Option<DateTime<Utc>>, _>(c)
            .op("queue.decode")?
            .map(from_pg))
    };
    let json = |c: &str| -> Result<Option<Value>> {
        Ok(row
            .try_get::<Option<Json<Value>>, _>(c)
            .op("queue.decode")?
            .map(|Json(v)| v))
    };
    Ok(JobInfo {
        queue: queue.clone(),
        job_id: stored_id(row.try_get("job_id").op("queue.decode")?, "job id")?,
        payload,
        priority: row.try_get("priority").op("queue.decode")?,
        attempts: stored_u32(row.try_get("attempts").op("queue.decode")?, "attempts")?,
        max_attempts: stored_u32(
            row.try_get("max_attempts").op("queue.decode")?,
            "max attempts",
        )?,
        enqueued_at: from_pg(row.try_get("enqueued_at").op("queue.decode")?),
        finished_at: at("finished_at")?,
        progress: json("progress")?,
        output: json("output")?,
        last_error: row.try_get("last_error").op("queue.decode")?,
        cancel_requested: row.try_get("cancel_requested").op("queue.decode")?,
        scheduled_for: if status == JobStatus::Scheduled {
            at("run_at")?
        } else {
            None
        },
        lease_expires_at: if status == JobStatus::Running {
            at("lease_expires")?
        } else {
            None
        },
        status,
    })
}

/// A duration as whole microseconds for `$n * interval '1 microsecond'`, saturating
/// (a lease or backoff never comes near 292,000 years).
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
