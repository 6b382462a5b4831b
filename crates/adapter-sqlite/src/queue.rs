//! The job queue in SQLite (Q1-Q10).
//!
//! Every operation is one transaction that starts with a write, so it holds SQLite's
//! write lock from its first statement: dequeue is then a plain "select the best
//! ready rows, mark them leased". Fencing tokens and enqueue order come from
//! store-wide counters, so a token is never current for two leases.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::lease::{limited_scan, takeback_limit, KeyLimits};
use storage_ports::JobTransfer;
use storage_ports::{
    Backoff, DeadJob, DeadState, Dequeue, Enqueued, Error, ExportedJob, FailOutcome, JobFailure,
    JobId, JobQueue, Lease, LeasedJob, NewJob, QueueName, QueueStats, Result, TenantId, Timestamp,
};
use storage_ports::{CancelOutcome, FinishedState, HistoryQuery, JobInfo, JobStatus, Page};

use crate::error::{json_column, SqlxResultExt};
use crate::SqliteStore;

/// How often a waiter re-checks for work written by other processes; writes from
/// this process wake it at once.
const WAIT_POLL: Duration = Duration::from_millis(250);

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Takes `n` values from a counter; returns the first.
async fn take(tx: &mut Transaction<'_, Sqlite>, counter: &str, n: usize) -> Result<i64> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "UPDATE flowstore_counters SET value = value + ? WHERE name = ? RETURNING value",
    )
    .bind(n)
    .bind(counter)
    .fetch_one(&mut **tx)
    .await
    .op("queue.counter")?;
    Ok(last - n + 1)
}

/// Enqueues one job inside a transaction (shared with T1). `seq` is its enqueue
/// order when the caller reserved one for a batch (one counter update per batch, not
/// per job); `None` takes one here.
pub(crate) async fn enqueue_in(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    queue: &QueueName,
    job: NewJob,
    now: Timestamp,
    seq: Option<i64>,
) -> Result<Enqueued> {
    if let Some(key) = &job.dedup_key {
        // A live job with the key, else (with a unique period, Q17) the newest that
        // completed or died within it. The write gate makes this and the insert one step.
        // INDEXED BY: without statistics, SQLite chose the primary key prefix (every
        // job of the queue) over the partial dedup index (found by P3-unique).
        let first: Option<String> = sqlx::query_scalar("SELECT job_id FROM flowstore_jobs INDEXED BY flowstore_jobs_dedup WHERE tenant = ?1 AND queue = ?2 AND dedup_key = ?3 AND dedup_key IS NOT NULL AND (state IN ('ready', 'leased') OR (?4 > 0 AND state IN ('completed', 'dead') AND finished_at >= ?5 - ?4)) ORDER BY state IN ('ready', 'leased') DESC, finished_at DESC LIMIT 1")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(key)
            .bind(job.unique_for_micros())
            .bind(now.as_micros())
            .fetch_optional(&mut **tx)
            .await
            .op("queue.enqueue")?;
        if let Some(id) = first {
            let job_id =
                JobId::new(id).map_err(|e| Error::corrupt(format!("stored job id: {e}")))?;
            return Ok(Enqueued {
                job_id,
                deduplicated: true,
            });
        }
    }
    let seq = match seq {
        Some(s) => s,
        None => take(tx, "job_seq", 1).await?,
    };
    let id = job.id.clone().unwrap_or_else(JobId::generate);
    let backoff = serde_json::to_string(&job.backoff)
        .map_err(|e| Error::invalid_input(format!("backoff: {e}")))?;
    let r = sqlx::query("INSERT INTO flowstore_jobs (tenant, queue, job_id, seq, payload, priority, run_at, max_attempts, backoff, dedup_key, state, enqueued_at, keep_for, concurrency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ready', ?, ?, ?)")
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(id.as_str())
        .bind(seq)
        .bind(job.payload.to_string())
        .bind(job.priority)
        .bind(job.due_at(now).as_micros())
        .bind(i64::from(job.max_attempts))
        .bind(backoff)
        .bind(job.dedup_key.as_deref())
        .bind(now.as_micros())
        .bind(job.keep_for_micros())
        .bind(job.concurrency_key.as_deref())
        .execute(&mut **tx)
        .await
        .op("queue.enqueue");
    match r {
        Ok(_) => Ok(Enqueued {
            job_id: id,
            deduplicated: false,
        }),
        Err(e) if e.kind() == storage_ports::ErrorKind::AlreadyExists => {
            Err(kit::job_taken(&id, queue))
        }
        Err(e) => Err(e),
    }
}

/// The job a dequeue hands out, decoded from its row before it is leased.
fn leased_of(
    row: &SqliteRow,
    queue: &QueueName,
    id: &str,
    token: i64,
    expires_at: Timestamp,
) -> Result<LeasedJob> {
    Ok(LeasedJob {
        lease: Lease {
            queue: queue.clone(),
            job_id: JobId::new(id).map_err(|e| Error::corrupt(format!("stored job id: {e}")))?,
            token: u64::try_from(token).unwrap_or(0),
            expires_at,
        },
        payload: json_column(
            &row.try_get::<String, _>("payload").op("queue.decode")?,
            "job payload",
        )?,
        priority: row.try_get("priority").op("queue.decode")?,
        attempt: u32_of(row, "attempts")?.saturating_add(1),
        max_attempts: u32_of(row, "max_attempts")?,
        enqueued_at: Timestamp::from_micros(row.try_get("enqueued_at").op("queue.decode")?),
    })
}

/// A stored `keep_for` in microseconds as a duration.
fn keep_for_of(micros: Option<i64>) -> Option<Duration> {
    micros.map(|m| Duration::from_micros(u64::try_from(m).unwrap_or(0)))
}

/// The columns [`info_of`] reads (a macro, so statements stay literals).
macro_rules! info_columns {
    () => {
        "job_id, state, payload, priority, attempts, max_attempts, enqueued_at, finished_at, progress, output, last_error, cancel_requested, run_at, lease_expires"
    };
}

/// A job row as `job` and `history` show it, its status read at `now`.
fn info_of(row: &SqliteRow, queue: &QueueName, now: Timestamp) -> Result<JobInfo> {
    let state: String = row.try_get("state").op("queue.decode")?;
    let at = |c: &str| -> Result<Option<i64>> { row.try_get(c).op("queue.decode") };
    let status = match state.as_str() {
        "ready" if at("run_at")?.unwrap_or(0) > now.as_micros() => JobStatus::Scheduled,
        "ready" => JobStatus::Pending,
        "leased" if at("lease_expires")?.unwrap_or(0) > now.as_micros() => JobStatus::Running,
        "leased" => JobStatus::Pending,
        other => FinishedState::parse(other)
            .map_err(|_| Error::corrupt(format!("stored job state {other:?}")))?
            .status(),
    };
    let json = |c: &str, what: &str| -> Result<Option<serde_json::Value>> {
        row.try_get::<Option<String>, _>(c)
            .op("queue.decode")?
            .map(|t| json_column(&t, what))
            .transpose()
    };
    Ok(JobInfo {
        queue: queue.clone(),
        job_id: JobId::new(row.try_get::<String, _>("job_id").op("queue.decode")?)
            .map_err(|e| Error::corrupt(format!("stored job id: {e}")))?,
        payload: json_column(
            &row.try_get::<String, _>("payload").op("queue.decode")?,
            "job payload",
        )?,
        priority: row.try_get("priority").op("queue.decode")?,
        attempts: u32_of(row, "attempts")?,
        max_attempts: u32_of(row, "max_attempts")?,
        enqueued_at: Timestamp::from_micros(row.try_get("enqueued_at").op("queue.decode")?),
        finished_at: at("finished_at")?.map(Timestamp::from_micros),
        progress: json("progress", "job progress")?,
        output: json("output", "job output")?,
        last_error: row.try_get("last_error").op("queue.decode")?,
        cancel_requested: row
            .try_get::<bool, _>("cancel_requested")
            .op("queue.decode")?,
        scheduled_for: if status == JobStatus::Scheduled {
            at("run_at")?.map(Timestamp::from_micros)
        } else {
            None
        },
        lease_expires_at: if status == JobStatus::Running {
            at("lease_expires")?.map(Timestamp::from_micros)
        } else {
            None
        },
        status,
    })
}

fn u32_of(row: &SqliteRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col).op("queue.decode")?;
    u32::try_from(v).map_err(|_| Error::corrupt(format!("stored {col} {v} is out of range")))
}

impl SqliteStore {
    pub(crate) fn notify_queue(&self) {
        self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Marks the caller's lease current-checked: a write that takes the lock and
    /// tells whether the lease is still the job's current one (and no cancel stands).
    async fn hold(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &TenantId,
        lease: &Lease,
        set_error: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE flowstore_jobs SET last_error = COALESCE(?, last_error) WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'leased' AND token = ? AND cancel_requested = 0")
            .bind(set_error)
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(i64_of(lease.token))
            .execute(&mut **tx)
            .await
            .op("queue.lease")?;
        if done.rows_affected() == 0 {
            return Err(not_held(&mut **tx, tenant, lease, now).await);
        }
        Ok(())
    }
}

/// Why a fenced write changed nothing: the job's cancel was asked for (then it is
/// finished as cancelled here, and the holder told so, Q14), or the lease is stale.
async fn not_held<'e, E>(exec: E, tenant: &TenantId, lease: &Lease, now: Timestamp) -> Error
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let done = sqlx::query("UPDATE flowstore_jobs SET state = 'cancelled', finished_at = ?1, keep_until = ?1 + keep_for, token = NULL, lease_expires = NULL WHERE tenant = ?2 AND queue = ?3 AND job_id = ?4 AND state = 'leased' AND token = ?5 AND cancel_requested = 1")
        .bind(now.as_micros())
        .bind(tenant.as_str())
        .bind(lease.queue.as_str())
        .bind(lease.job_id.as_str())
        .bind(i64_of(lease.token))
        .execute(exec)
        .await
        .op("queue.lease");
    match done {
        Ok(d) if d.rows_affected() == 1 => storage_ports::queue::cancelled_error(&lease.job_id),
        Ok(_) => lease.stale(),
        Err(e) => e,
    }
}

/// Acknowledges `leases` in the caller's write transaction, which commits it: a job
/// without `keep_for` is deleted (one statement), one with it goes to the history
/// with `output` (Q15, Q16).
async fn ack_in(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &TenantId,
    leases: &[Lease],
    output: Option<&str>,
    now: Timestamp,
) -> Result<Vec<Result<()>>> {
    let mut out = Vec::with_capacity(leases.len());
    for lease in leases {
        macro_rules! held {
            () => {
                "tenant = ?1 AND queue = ?2 AND job_id = ?3 AND state = 'leased' AND token = ?4 AND cancel_requested = 0"
            };
        }
        let deleted = sqlx::query(concat!(
            "DELETE FROM flowstore_jobs WHERE ",
            held!(),
            " AND keep_for IS NULL"
        ))
        .bind(tenant.as_str())
        .bind(lease.queue.as_str())
        .bind(lease.job_id.as_str())
        .bind(i64_of(lease.token))
        .execute(&mut **tx)
        .await
        .op("queue.ack")?;
        if deleted.rows_affected() == 1 {
            out.push(Ok(()));
            continue;
        }
        let kept = sqlx::query(concat!("UPDATE flowstore_jobs SET state = 'completed', output = ?5, finished_at = ?6, keep_until = ?6 + keep_for, token = NULL, lease_expires = NULL WHERE ", held!()))
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(i64_of(lease.token))
            .bind(output)
            .bind(now.as_micros())
            .execute(&mut **tx)
            .await
            .op("queue.ack")?;
        out.push(if kept.rows_affected() == 1 {
            Ok(())
        } else {
            Err(not_held(&mut **tx, tenant, lease, now).await)
        });
    }
    Ok(out)
}

impl SqliteStore {
    /// The dequeue in the caller's write transaction, which commits it.
    async fn dequeue_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        tenant: &TenantId,
        queue: &QueueName,
        req: &Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        let now = self.now();
        let (t, q) = (tenant.as_str(), queue.as_str());
        // A paused queue delivers nothing and takes nothing back (Q11); read in the
        // write transaction, so a pause that returned is seen.
        let paused: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM flowstore_paused_queues WHERE tenant = ?1 AND queue = ?2",
        )
        .bind(t)
        .bind(q)
        .fetch_optional(&mut **tx)
        .await
        .op("queue.dequeue")?;
        if paused.is_some() {
            return Ok(Vec::new());
        }
        // The oldest `takeback_limit` expired leases (storage_ports::rules::lease):
        // last attempts among them die, the others compete with the ready jobs. The
        // leased index yields them in expiry order, so a backlog costs a bounded read.
        let limit = i64::try_from(takeback_limit(req.max)).unwrap_or(i64::MAX);
        let window = sqlx::query("SELECT job_id, attempts >= max_attempts AS last, cancel_requested FROM flowstore_jobs INDEXED BY flowstore_jobs_leased WHERE tenant = ?1 AND queue = ?2 AND state = 'leased' AND lease_expires <= ?3 ORDER BY lease_expires, job_id LIMIT ?4")
            .bind(t)
            .bind(q)
            .bind(now.as_micros())
            .bind(limit)
            .fetch_all(&mut **tx)
            .await
            .op("queue.dequeue")?;
        let (mut dying, mut taken, mut cancelled) = (Vec::new(), Vec::new(), Vec::new());
        for r in &window {
            let id: String = r.try_get("job_id").op("queue.decode")?;
            if r.try_get::<bool, _>("cancel_requested")
                .op("queue.decode")?
            {
                cancelled.push(id);
            } else if r.try_get::<bool, _>("last").op("queue.decode")? {
                dying.push(id);
            } else {
                taken.push(id);
            }
        }
        if !cancelled.is_empty() {
            // A cancelled job is never delivered again (Q14).
            sqlx::query("UPDATE flowstore_jobs SET state = 'cancelled', finished_at = ?1, keep_until = ?1 + keep_for, token = NULL, lease_expires = NULL WHERE tenant = ?2 AND queue = ?3 AND job_id IN (SELECT value FROM json_each(?4))")
                .bind(now.as_micros())
                .bind(t)
                .bind(q)
                .bind(serde_json::Value::from(cancelled).to_string())
                .execute(&mut **tx)
                .await
                .op("queue.dequeue")?;
        }
        if !dying.is_empty() {
            sqlx::query("UPDATE flowstore_jobs SET state = 'dead', died_at = ?1, finished_at = ?1, keep_until = ?1 + keep_for, last_error = 'lease expired on attempt ' || attempts || ' of ' || max_attempts WHERE tenant = ?2 AND queue = ?3 AND job_id IN (SELECT value FROM json_each(?4))")
                .bind(now.as_micros())
                .bind(t)
                .bind(q)
                .bind(serde_json::Value::from(dying).to_string())
                .execute(&mut **tx)
                .await
                .op("queue.dequeue")?;
        }
        // With concurrency limits (Q18), the running jobs per key, counted inside this
        // write transaction (SQLite has one writer, so no other claim interleaves), and
        // a bounded window of candidates to pick from past the keys at their limit.
        let running = if req.is_limited() {
            Some(running_counts(&mut **tx, t, q, now).await?)
        } else {
            None
        };
        let window = if running.is_some() {
            limited_scan(req.max)
        } else {
            req.max
        };
        // The best of the ready jobs and of the expired leases taken.
        let rows = sqlx::query("SELECT job_id, payload, priority, attempts, max_attempts, enqueued_at, concurrency_key FROM ( \
               SELECT * FROM (SELECT job_id, payload, priority, attempts, max_attempts, enqueued_at, run_at, seq, concurrency_key FROM flowstore_jobs INDEXED BY flowstore_jobs_ready WHERE tenant = ?1 AND queue = ?2 AND state = 'ready' AND run_at <= ?3 ORDER BY priority DESC, run_at, seq LIMIT ?4) \
               UNION ALL \
               SELECT job_id, payload, priority, attempts, max_attempts, enqueued_at, run_at, seq, concurrency_key FROM flowstore_jobs WHERE tenant = ?1 AND queue = ?2 AND job_id IN (SELECT value FROM json_each(?5))) \
             ORDER BY priority DESC, run_at, seq LIMIT ?4")
            .bind(t)
            .bind(q)
            .bind(now.as_micros())
            .bind(i64::try_from(window).unwrap_or(1))
            .bind(serde_json::Value::from(taken).to_string())
            .fetch_all(&mut **tx)
            .await
            .op("queue.dequeue")?;
        let rows = match running {
            Some((by_key, total)) => {
                let mut limits = KeyLimits::new(req, by_key, total);
                let mut picked = Vec::new();
                for row in rows {
                    if limits.is_full() {
                        break;
                    }
                    let key: Option<String> = row.try_get("concurrency_key").op("queue.decode")?;
                    if limits.admit(key.as_deref()) {
                        picked.push(row);
                    }
                }
                picked
            }
            None => rows,
        };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let first_token = take(tx, "lease_token", rows.len()).await?;
        let expires_at = now.plus(req.lease_for);
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let token = first_token + i64::try_from(i).unwrap_or(0);
            let id: String = row.try_get("job_id").op("queue.decode")?;
            let job = match leased_of(row, queue, &id, token, expires_at) {
                Ok(job) => job,
                Err(e) if e.kind() == storage_ports::ErrorKind::CorruptData => {
                    // A damaged job is never delivered and never blocks the queue: it
                    // goes to the dead letters with the reason (W10).
                    tracing::warn!(%tenant, %queue, job = %id, error = %e, "a damaged job is moved to the dead letters");
                    sqlx::query("UPDATE flowstore_jobs SET state = 'dead', died_at = ?1, finished_at = ?1, keep_until = ?1 + keep_for, last_error = ?2 WHERE tenant = ?3 AND queue = ?4 AND job_id = ?5")
                        .bind(now.as_micros())
                        .bind(format!("damaged: {}", e.message()))
                        .bind(t)
                        .bind(q)
                        .bind(&id)
                        .execute(&mut **tx)
                        .await
                        .op("queue.dequeue")?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            sqlx::query("UPDATE flowstore_jobs SET state = 'leased', token = ?, lease_expires = ?, attempts = attempts + 1 WHERE tenant = ? AND queue = ? AND job_id = ?")
                .bind(token)
                .bind(expires_at.as_micros())
                .bind(t)
                .bind(q)
                .bind(&id)
                .execute(&mut **tx)
                .await
                .op("queue.dequeue")?;
            out.push(job);
        }
        Ok(out)
    }
}

/// Running jobs (leased, lease not expired) of a queue per concurrency key, and in all.
async fn running_counts<'e, E>(
    exec: E,
    tenant: &str,
    queue: &str,
    now: Timestamp,
) -> Result<(HashMap<String, u64>, u64)>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let rows = sqlx::query("SELECT concurrency_key, COUNT(*) AS n FROM flowstore_jobs INDEXED BY flowstore_jobs_leased WHERE tenant = ?1 AND queue = ?2 AND state = 'leased' AND lease_expires > ?3 GROUP BY concurrency_key")
        .bind(tenant)
        .bind(queue)
        .bind(now.as_micros())
        .fetch_all(exec)
        .await
        .op("queue.running")?;
    let mut by_key = HashMap::new();
    let mut total = 0_u64;
    for r in rows {
        let n: i64 = r.try_get("n").op("queue.decode")?;
        let n = u64::try_from(n).unwrap_or(0);
        total += n;
        if let Some(k) = r
            .try_get::<Option<String>, _>("concurrency_key")
            .op("queue.decode")?
        {
            by_key.insert(k, n);
        }
    }
    Ok((by_key, total))
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue_batch(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued>>> {
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.enqueue")?;
        let mut out = Vec::with_capacity(jobs.len());
        // The batch's enqueue order in one counter update; a job refused or
        // deduplicated leaves a gap, which orders nothing.
        let first = take(&mut tx, "job_seq", jobs.len().max(1)).await?;
        let now = self.now();
        for (i, job) in jobs.into_iter().enumerate() {
            let seq = first + i64::try_from(i).unwrap_or(i64::MAX);
            out.push(match self.limit.check_job(&job) {
                Ok(()) => enqueue_in(&mut tx, tenant, queue, job, now, Some(seq)).await,
                Err(e) => Err(e),
            });
        }
        tx.commit().await.op("queue.enqueue")?;
        self.notify_queue();
        Ok(out)
    }

    async fn dequeue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        req: Dequeue,
    ) -> Result<Vec<LeasedJob>> {
        req.validate()?;
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.dequeue")?;
        let out = self.dequeue_in(&mut tx, tenant, queue, &req).await?;
        tx.commit().await.op("queue.dequeue")?;
        Ok(out)
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        extend_by: Duration,
    ) -> Result<Lease> {
        let now = self.now();
        let expires_at = now.plus(extend_by);
        let done = sqlx::query("UPDATE flowstore_jobs SET lease_expires = ? WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'leased' AND token = ? AND cancel_requested = 0")
            .bind(expires_at.as_micros())
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(i64_of(lease.token))
            .execute(&self.pool)
            .await
            .op("queue.heartbeat")?;
        if done.rows_affected() == 0 {
            return Err(not_held(&self.pool, tenant, lease, now).await);
        }
        Ok(Lease {
            expires_at,
            ..lease.clone()
        })
    }

    async fn ack_batch(&self, tenant: &TenantId, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.ack")?;
        let out = ack_in(&mut tx, tenant, leases, None, self.now()).await?;
        tx.commit().await.op("queue.ack")?;
        Ok(out)
    }

    async fn ack_and_dequeue(
        &self,
        tenant: &TenantId,
        done: &[Lease],
        queue: &QueueName,
        next: Dequeue,
    ) -> Result<storage_ports::AckedAndLeased> {
        next.validate()?;
        // One write transaction, so one commit (one fsync) for the acks and the leases.
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.ack_and_dequeue")?;
        let acked = ack_in(&mut tx, tenant, done, None, self.now()).await?;
        let leased = self.dequeue_in(&mut tx, tenant, queue, &next).await?;
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
        let now = self.now();
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.fail")?;
        if let Err(e) = Self::hold(&mut tx, tenant, lease, Some(&failure.error), now).await {
            if e.kind() == storage_ports::ErrorKind::Cancelled {
                // The job was finished as cancelled in this transaction: keep that.
                tx.commit().await.op("queue.fail")?;
            }
            return Err(e);
        }
        let row = sqlx::query("SELECT attempts, max_attempts, backoff FROM flowstore_jobs WHERE tenant = ? AND queue = ? AND job_id = ?")
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .fetch_one(&mut *tx)
            .await
            .op("queue.fail")?;
        let (attempts, max) = (u32_of(&row, "attempts")?, u32_of(&row, "max_attempts")?);
        let backoff: Backoff =
            serde_json::from_str(&row.try_get::<String, _>("backoff").op("queue.decode")?)
                .map_err(|e| Error::corrupt(format!("stored backoff: {e}")))?;
        let outcome = if failure.retry && attempts < max {
            FailOutcome::Retrying {
                at: now.plus(backoff.delay_after(attempts)),
            }
        } else {
            FailOutcome::Dead
        };
        let (state, run_at, died_at) = match outcome {
            FailOutcome::Retrying { at } => ("ready", Some(at.as_micros()), None),
            FailOutcome::Dead => ("dead", None, Some(now.as_micros())),
        };
        sqlx::query("UPDATE flowstore_jobs SET state = ?1, run_at = COALESCE(?2, run_at), died_at = ?3, finished_at = ?3, keep_until = ?3 + keep_for, token = NULL, lease_expires = NULL WHERE tenant = ?4 AND queue = ?5 AND job_id = ?6")
            .bind(state)
            .bind(run_at)
            .bind(died_at)
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .execute(&mut *tx)
            .await
            .op("queue.fail")?;
        tx.commit().await.op("queue.fail")?;
        self.notify_queue();
        Ok(outcome)
    }

    async fn dead(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        limit: usize,
    ) -> Result<Vec<DeadJob>> {
        let rows = sqlx::query("SELECT job_id, payload, attempts, last_error, died_at FROM flowstore_jobs WHERE tenant = ? AND queue = ? AND state = 'dead' ORDER BY died_at, job_id LIMIT ?")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .op("queue.dead")?;
        rows.iter()
            .map(|r| {
                Ok(DeadJob {
                    job_id: JobId::new(r.try_get::<String, _>("job_id").op("queue.decode")?)
                        .map_err(|e| Error::corrupt(format!("stored job id: {e}")))?,
                    payload: json_column(
                        &r.try_get::<String, _>("payload").op("queue.decode")?,
                        "job payload",
                    )?,
                    attempts: u32_of(r, "attempts")?,
                    last_error: r
                        .try_get::<Option<String>, _>("last_error")
                        .op("queue.decode")?
                        .unwrap_or_default(),
                    died_at: Timestamp::from_micros(
                        r.try_get::<Option<i64>, _>("died_at")
                            .op("queue.decode")?
                            .unwrap_or(0),
                    ),
                })
            })
            .collect()
    }

    async fn requeue(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<()> {
        let done = sqlx::query("UPDATE flowstore_jobs SET state = 'ready', attempts = 0, run_at = ?, token = NULL, lease_expires = NULL, died_at = NULL, finished_at = NULL, keep_until = NULL WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'dead'")
            .bind(self.now().as_micros())
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
        self.notify_queue();
        Ok(())
    }

    async fn stats(&self, tenant: &TenantId, queue: &QueueName) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(state = 'dead'), 0) AS dead, \
               COALESCE(SUM(state = 'completed'), 0) AS completed, \
               COALESCE(SUM(state = 'cancelled'), 0) AS cancelled, \
               COALESCE(SUM(state = 'leased' AND lease_expires > ?1), 0) AS running, \
               COALESCE(SUM(state = 'ready' AND run_at > ?1), 0) AS scheduled, \
               COALESCE(SUM((state = 'ready' AND run_at <= ?1) OR (state = 'leased' AND lease_expires <= ?1)), 0) AS pending, \
               EXISTS (SELECT 1 FROM flowstore_paused_queues WHERE tenant = ?2 AND queue = ?3) AS paused \
             FROM flowstore_jobs WHERE tenant = ?2 AND queue = ?3",
        )
        .bind(self.now().as_micros())
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
            let now = self.now();
            // The earliest time a job becomes ready (now or later), if any.
            let next: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(CASE state WHEN 'ready' THEN run_at ELSE lease_expires END) FROM flowstore_jobs WHERE tenant = ?1 AND queue = ?2 AND state IN ('ready', 'leased') AND NOT EXISTS (SELECT 1 FROM flowstore_paused_queues WHERE tenant = ?1 AND queue = ?2)",
            )
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .fetch_one(&self.pool)
            .await
            .op("queue.wait")?;
            if next.is_some_and(|t| t <= now.as_micros()) {
                return Ok(true);
            }
            let due =
                next.map(|t| tokio::time::Instant::now() + Timestamp::from_micros(t).since(now));
            let wake = [
                Some(deadline),
                due,
                Some(tokio::time::Instant::now() + WAIT_POLL),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let _ = tokio::time::timeout_at(wake, changes.changed()).await;
        }
    }

    async fn pause(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query("INSERT OR IGNORE INTO flowstore_paused_queues (tenant, queue, paused_at) VALUES (?, ?, ?)")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(self.now().as_micros())
            .execute(&self.pool)
            .await
            .op("queue.pause")?;
        Ok(())
    }

    async fn resume(&self, tenant: &TenantId, queue: &QueueName) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query("DELETE FROM flowstore_paused_queues WHERE tenant = ? AND queue = ?")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .execute(&self.pool)
            .await
            .op("queue.resume")?;
        self.notify_queue();
        Ok(())
    }

    async fn snooze(&self, tenant: &TenantId, lease: &Lease, delay: Duration) -> Result<Timestamp> {
        storage_ports::queue::check_snooze(delay)?;
        let now = self.now();
        let at = now.plus(delay);
        let _gate = self.write_gate().await;
        // Fenced by the token; the attempt the lease took is given back.
        let done = sqlx::query("UPDATE flowstore_jobs SET state = 'ready', run_at = ?, attempts = MAX(attempts - 1, 0), token = NULL, lease_expires = NULL WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'leased' AND token = ? AND cancel_requested = 0")
            .bind(at.as_micros())
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(i64_of(lease.token))
            .execute(&self.pool)
            .await
            .op("queue.snooze")?;
        if done.rows_affected() == 0 {
            return Err(not_held(&self.pool, tenant, lease, now).await);
        }
        self.notify_queue();
        Ok(at)
    }

    async fn cancel(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<CancelOutcome> {
        let now = self.now();
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.cancel")?;
        let (t, q, j) = (tenant.as_str(), queue.as_str(), job.as_str());
        let ready = sqlx::query("UPDATE flowstore_jobs SET state = 'cancelled', finished_at = ?1, keep_until = ?1 + keep_for WHERE tenant = ?2 AND queue = ?3 AND job_id = ?4 AND state = 'ready'")
            .bind(now.as_micros())
            .bind(t)
            .bind(q)
            .bind(j)
            .execute(&mut *tx)
            .await
            .op("queue.cancel")?;
        let outcome = if ready.rows_affected() == 1 {
            CancelOutcome::Cancelled
        } else {
            let running = sqlx::query("UPDATE flowstore_jobs SET cancel_requested = 1 WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'leased'")
                .bind(t)
                .bind(q)
                .bind(j)
                .execute(&mut *tx)
                .await
                .op("queue.cancel")?;
            if running.rows_affected() == 0 {
                let state: Option<String> = sqlx::query_scalar(
                    "SELECT state FROM flowstore_jobs WHERE tenant = ? AND queue = ? AND job_id = ?",
                )
                .bind(t)
                .bind(q)
                .bind(j)
                .fetch_optional(&mut *tx)
                .await
                .op("queue.cancel")?;
                return Err(match state {
                    Some(state) => storage_ports::queue::finished_error(job, &state),
                    None => Error::not_found(format!("no job {job} in queue {queue}")),
                });
            }
            CancelOutcome::Requested
        };
        tx.commit().await.op("queue.cancel")?;
        self.notify_queue();
        Ok(outcome)
    }

    async fn progress(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        progress: serde_json::Value,
    ) -> Result<()> {
        self.limit.check("job progress", &progress)?;
        let now = self.now();
        let _gate = self.write_gate().await;
        let done = sqlx::query("UPDATE flowstore_jobs SET progress = ? WHERE tenant = ? AND queue = ? AND job_id = ? AND state = 'leased' AND token = ? AND cancel_requested = 0")
            .bind(progress.to_string())
            .bind(tenant.as_str())
            .bind(lease.queue.as_str())
            .bind(lease.job_id.as_str())
            .bind(i64_of(lease.token))
            .execute(&self.pool)
            .await
            .op("queue.progress")?;
        if done.rows_affected() == 0 {
            return Err(not_held(&self.pool, tenant, lease, now).await);
        }
        Ok(())
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        lease: &Lease,
        output: serde_json::Value,
    ) -> Result<()> {
        self.limit.check("job output", &output)?;
        let text = output.to_string();
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.complete")?;
        let mut out = ack_in(
            &mut tx,
            tenant,
            std::slice::from_ref(lease),
            Some(&text),
            self.now(),
        )
        .await?;
        tx.commit().await.op("queue.complete")?;
        out.pop()
            .unwrap_or_else(|| Err(Error::backend("ack returned no result")))
    }

    async fn job(&self, tenant: &TenantId, queue: &QueueName, job: &JobId) -> Result<JobInfo> {
        let row = sqlx::query(concat!(
            "SELECT ",
            info_columns!(),
            " FROM flowstore_jobs WHERE tenant = ? AND queue = ? AND job_id = ?"
        ))
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(job.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("queue.job")?
        .ok_or_else(|| Error::not_found(format!("no job {job} in queue {queue}")))?;
        info_of(&row, queue, self.now())
    }

    async fn history(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        query: &HistoryQuery,
    ) -> Result<Page<JobInfo>> {
        let after = query.position()?;
        let limit = query.page.effective_limit();
        let (at, id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let rows = sqlx::query(concat!(
            "SELECT ",
            info_columns!(),
            " FROM flowstore_jobs WHERE tenant = ?1 AND queue = ?2 AND finished_at IS NOT NULL \
             AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR (finished_at, job_id) < (?4, ?5)) \
             ORDER BY finished_at DESC, job_id DESC LIMIT ?6"
        ))
        .bind(tenant.as_str())
        .bind(queue.as_str())
        .bind(query.state.map(FinishedState::as_str))
        .bind(at)
        .bind(id)
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .op("queue.history")?;
        let now = self.now();
        let last_read = rows.last().and_then(|r| {
            Some((
                r.try_get::<i64, _>("finished_at").ok()?,
                r.try_get::<String, _>("job_id").ok()?,
            ))
        });
        let (items, damaged) =
            storage_ports::adapter_kit::readable(rows.iter().map(|r| info_of(r, queue, now)))?;
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
        let _gate = self.write_gate().await;
        let done = sqlx::query("DELETE FROM flowstore_jobs WHERE (tenant, queue, job_id) IN (SELECT tenant, queue, job_id FROM flowstore_jobs INDEXED BY flowstore_jobs_keep_until WHERE tenant = ?1 AND keep_until <= ?2 ORDER BY keep_until LIMIT ?3)")
            .bind(tenant.as_str())
            .bind(self.now().as_micros())
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
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
        let now = self.now();
        macro_rules! listing {
            ($where:literal, $order:literal) => {
                concat!(
                    "SELECT ",
                    info_columns!(),
                    " FROM flowstore_jobs WHERE tenant = ?1 AND queue = ?2 AND ",
                    $where,
                    " ORDER BY ",
                    $order,
                    " LIMIT ?4"
                )
            };
        }
        let sql = match status {
            JobStatus::Pending => listing!(
                "((state = 'ready' AND run_at <= ?3) OR (state = 'leased' AND lease_expires <= ?3))",
                "priority DESC, run_at, seq"
            ),
            JobStatus::Scheduled => listing!("state = 'ready' AND run_at > ?3", "run_at, seq"),
            JobStatus::Running => {
                listing!("state = 'leased' AND lease_expires > ?3", "lease_expires, job_id")
            }
            JobStatus::Completed | JobStatus::Cancelled | JobStatus::Dead => listing!(
                "state = ?5 AND finished_at IS NOT NULL",
                "finished_at DESC, job_id DESC"
            ),
        };
        let listing = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(now.as_micros())
            .bind(i64::try_from(limit).unwrap_or(1000));
        let listing = if status.is_finished() {
            listing.bind(status.as_str())
        } else {
            listing
        };
        let rows = listing.fetch_all(&self.pool).await.op("queue.jobs")?;
        let (items, damaged) =
            storage_ports::adapter_kit::readable(rows.iter().map(|r| info_of(r, queue, now)))?;
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
        let (by_key, _) =
            running_counts(&self.pool, tenant.as_str(), queue.as_str(), self.now()).await?;
        Ok(storage_ports::queue::busiest_first(
            by_key.into_iter().collect(),
        ))
    }

    async fn reenqueue(
        &self,
        tenant: &TenantId,
        queue: &QueueName,
        job: &JobId,
    ) -> Result<Enqueued> {
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.reenqueue")?;
        let row = sqlx::query("SELECT payload, priority, max_attempts, backoff, dedup_key, keep_for, concurrency_key FROM flowstore_jobs WHERE tenant = ? AND queue = ? AND job_id = ? AND finished_at IS NOT NULL")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(job.as_str())
            .fetch_optional(&mut *tx)
            .await
            .op("queue.reenqueue")?
            .ok_or_else(|| Error::not_found(format!("no finished job {job} in queue {queue}")))?;
        let original = NewJob {
            id: None,
            payload: json_column(
                &row.try_get::<String, _>("payload").op("queue.decode")?,
                "job payload",
            )?,
            priority: row.try_get("priority").op("queue.decode")?,
            run_at: None,
            delay: None,
            max_attempts: u32_of(&row, "max_attempts")?,
            backoff: serde_json::from_str(&row.try_get::<String, _>("backoff").op("queue.decode")?)
                .map_err(|e| Error::corrupt(format!("stored backoff: {e}")))?,
            dedup_key: row.try_get("dedup_key").op("queue.decode")?,
            unique_for: None,
            concurrency_key: row.try_get("concurrency_key").op("queue.decode")?,
            keep_for: keep_for_of(row.try_get("keep_for").op("queue.decode")?),
        };
        let out = enqueue_in(
            &mut tx,
            tenant,
            queue,
            storage_ports::queue::reenqueued(&original),
            self.now(),
            None,
        )
        .await?;
        tx.commit().await.op("queue.reenqueue")?;
        self.notify_queue();
        Ok(out)
    }
}

#[async_trait]
impl JobTransfer for SqliteStore {
    async fn export_jobs(&self, tenant: &TenantId) -> Result<Vec<ExportedJob>> {
        let rows = sqlx::query("SELECT queue, job_id, payload, priority, run_at, max_attempts, backoff, dedup_key, state, attempts, last_error, died_at, keep_for, concurrency_key FROM flowstore_jobs WHERE tenant = ? AND state IN ('ready', 'leased', 'dead') ORDER BY queue, seq")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .op("queue.export")?;
        let decoded = rows.iter().map(|r| {
            let s = |c: &str| r.try_get::<String, _>(c).op("queue.decode");
            Ok(ExportedJob {
                queue: QueueName::new(s("queue")?)
                    .map_err(|e| Error::corrupt(format!("stored queue name: {e}")))?,
                job: NewJob {
                    id: Some(
                        JobId::new(s("job_id")?)
                            .map_err(|e| Error::corrupt(format!("stored job id: {e}")))?,
                    ),
                    payload: json_column(&s("payload")?, "job payload")?,
                    priority: r.try_get("priority").op("queue.decode")?,
                    run_at: Some(Timestamp::from_micros(
                        r.try_get("run_at").op("queue.decode")?,
                    )),
                    delay: None,
                    max_attempts: u32_of(r, "max_attempts")?,
                    backoff: serde_json::from_str(&s("backoff")?)
                        .map_err(|e| Error::corrupt(format!("stored backoff: {e}")))?,
                    dedup_key: r.try_get("dedup_key").op("queue.decode")?,
                    unique_for: None,
                    concurrency_key: r.try_get("concurrency_key").op("queue.decode")?,
                    keep_for: keep_for_of(r.try_get("keep_for").op("queue.decode")?),
                },
                dead: DeadState::of_row(
                    &s("state")?,
                    u32_of(r, "attempts")?,
                    r.try_get("last_error").op("queue.decode")?,
                    r.try_get("died_at").op("queue.decode")?,
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
        let backoff = serde_json::to_string(&job.backoff)
            .map_err(|e| Error::invalid_input(format!("backoff: {e}")))?;
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("queue.import_dead")?;
        let seq = take(&mut tx, "job_seq", 1).await?;
        let r = sqlx::query("INSERT INTO flowstore_jobs (tenant, queue, job_id, seq, payload, priority, run_at, max_attempts, backoff, dedup_key, attempts, state, last_error, died_at, enqueued_at, keep_for, finished_at, keep_until, concurrency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'dead', ?, ?, ?, ?, ?, ?, ?)")
            .bind(tenant.as_str())
            .bind(queue.as_str())
            .bind(id.as_str())
            .bind(seq)
            .bind(job.payload.to_string())
            .bind(job.priority)
            .bind(job.run_at.unwrap_or(dead.died_at).as_micros())
            .bind(i64::from(job.max_attempts))
            .bind(backoff)
            .bind(job.dedup_key.as_deref())
            .bind(i64::from(dead.attempts))
            .bind(&dead.last_error)
            .bind(dead.died_at.as_micros())
            .bind(dead.died_at.as_micros())
            .bind(job.keep_for_micros())
            .bind(dead.died_at.as_micros())
            .bind(storage_ports::queue::keep_until(
                dead.died_at,
                job.keep_for_micros(),
            ))
            .bind(job.concurrency_key.as_deref())
            .execute(&mut *tx)
            .await
            .op("queue.import_dead");
        match r {
            Ok(_) => tx.commit().await.op("queue.import_dead"),
            Err(e) if e.kind() == storage_ports::ErrorKind::AlreadyExists => {
                Err(kit::job_taken(&id, queue))
            }
            Err(e) => Err(e),
        }
    }
}
