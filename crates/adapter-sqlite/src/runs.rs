//! Run logs in SQLite (E1-E11).
//!
//! Events are rows of `flowstore_run_events`; steps are read back from the `step`
//! events, so the log and the steps can never disagree. Each run is written in one
//! transaction; a batch is one transaction with a savepoint per run, so one bad run
//! fails alone (E11).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use storage_ports::adapter_kit::cursors::RUNS as RUN_CURSOR;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::poll_watch::poll_watch;
use storage_ports::{
    CompleteRun, Error, ErrorKind, EventStream, NewRun, Page, PageRequest, Result, Run, RunError,
    RunEvent, RunEventKind, RunId, RunOutcome, RunQuery, RunStatus, RunStep, RunStore, TenantId,
    Timestamp, WorkflowId,
};

use crate::error::{json_column, SqlxResultExt};
use crate::group_commit::Write;
use crate::SqliteStore;

/// How long a watcher waits before it reads again unwoken. A write in this process
/// wakes its watchers at once ([`RunWakes`](storage_ports::adapter_kit::run_wakes));
/// SQLite tells nothing across processes, so a write from another process is seen
/// within this (one indexed range read per wait).
const WATCH_FALLBACK: Duration = Duration::from_millis(200);

macro_rules! run_columns {
    () => {
        "run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error"
    };
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be stored: {e}")))
}

fn run_of(row: &SqliteRow) -> Result<Run> {
    let get_s = |c: &str| row.try_get::<String, _>(c).op("runs.decode");
    let version: i64 = row.try_get("version").op("runs.decode")?;
    let output: Option<String> = row.try_get("output").op("runs.decode")?;
    let error: Option<String> = row.try_get("error").op("runs.decode")?;
    Ok(Run {
        run_id: RunId::new(get_s("run_id")?)
            .map_err(|e| Error::corrupt(format!("stored run id: {e}")))?,
        workflow_id: WorkflowId::new(get_s("workflow_id")?)
            .map_err(|e| Error::corrupt(format!("stored workflow id: {e}")))?,
        version: u32::try_from(version)
            .map_err(|_| Error::corrupt(format!("stored version {version} is out of range")))?,
        status: RunStatus::parse(&get_s("status")?)
            .map_err(|e| Error::corrupt(e.message().to_owned()))?,
        inputs: json_column(&get_s("inputs")?, "run inputs")?,
        started_at: Timestamp::from_micros(row.try_get("started_at").op("runs.decode")?),
        ended_at: row
            .try_get::<Option<i64>, _>("ended_at")
            .op("runs.decode")?
            .map(Timestamp::from_micros),
        output: output.map(|o| json_column(&o, "run output")).transpose()?,
        error: error
            .map(|e| {
                serde_json::from_str::<RunError>(&e)
                    .map_err(|x| Error::corrupt(format!("stored run error: {x}")))
            })
            .transpose()?,
    })
}

fn event_of(row: &SqliteRow) -> Result<RunEvent> {
    let seq: i64 = row.try_get("seq").op("runs.decode")?;
    let kind: String = row.try_get("kind").op("runs.decode")?;
    Ok(RunEvent {
        seq: u64::try_from(seq)
            .map_err(|_| Error::corrupt(format!("stored sequence {seq} is negative")))?,
        at: Timestamp::from_micros(row.try_get("at").op("runs.decode")?),
        kind: serde_json::from_str(&kind)
            .map_err(|e| Error::corrupt(format!("stored run event: {e}")))?,
    })
}

async fn insert_event(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    run: &RunId,
    e: &RunEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
    .bind(e.at.as_micros())
    .bind(to_json(&e.kind, "run event")?)
    .execute(&mut **tx)
    .await
    .op("runs.write")?;
    Ok(())
}

async fn insert_run(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    run: &Run,
    next_seq: u64,
) -> Result<()> {
    let r = sqlx::query(concat!(
        "INSERT INTO flowstore_runs (",
        run_columns!(),
        ", tenant, next_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(run.run_id.as_str())
    .bind(run.workflow_id.as_str())
    .bind(i64::from(run.version))
    .bind(run.status.as_str())
    .bind(to_json(&run.inputs, "run inputs")?)
    .bind(run.started_at.as_micros())
    .bind(run.ended_at.map(Timestamp::as_micros))
    .bind(
        run.output
            .as_ref()
            .map(|o| to_json(o, "run output"))
            .transpose()?,
    )
    .bind(
        run.error
            .as_ref()
            .map(|e| to_json(e, "run error"))
            .transpose()?,
    )
    .bind(tenant.as_str())
    .bind(i64::try_from(next_seq).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await
    .op("runs.write");
    match r {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(kit::run_taken(&run.run_id)),
        other => other.map(|_| ()),
    }
}

impl SqliteStore {
    pub(crate) async fn write_complete(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &TenantId,
        run: &CompleteRun,
    ) -> Result<()> {
        let events = run.events();
        insert_run(tx, tenant, &run.run, events.len() as u64 + 1).await?;
        for e in &events {
            insert_event(tx, tenant, &run.run.run_id, e).await?;
        }
        Ok(())
    }

    /// Appends `step` to a running run inside `tx`; the sequence number it took.
    pub(crate) async fn append_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &TenantId,
        run: &RunId,
        step: &RunStep,
    ) -> Result<u64> {
        let seq = self.next_seq(tx, tenant, run).await?;
        insert_event(
            tx,
            tenant,
            run,
            &RunEvent {
                seq,
                at: step.at(),
                kind: RunEventKind::Step(step.clone()),
            },
        )
        .await?;
        Ok(seq)
    }

    /// Finishes a running run inside `tx`; the sequence number of its Finished event.
    pub(crate) async fn finish_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &TenantId,
        run: &RunId,
        outcome: &RunOutcome,
    ) -> Result<u64> {
        let seq = self.next_seq(tx, tenant, run).await?;
        sqlx::query("UPDATE flowstore_runs SET status = ?, ended_at = ?, output = ?, error = ? WHERE tenant = ? AND run_id = ?")
            .bind(outcome.status.as_str())
            .bind(outcome.ended_at.as_micros())
            .bind(outcome.output.as_ref().map(|o| to_json(o, "run output")).transpose()?)
            .bind(outcome.error.as_ref().map(|e| to_json(e, "run error")).transpose()?)
            .bind(tenant.as_str())
            .bind(run.as_str())
            .execute(&mut **tx)
            .await
            .op("runs.finish")?;
        let finished = RunEvent {
            seq,
            at: outcome.ended_at,
            kind: RunEventKind::Finished {
                status: outcome.status,
            },
        };
        insert_event(tx, tenant, run, &finished).await?;
        Ok(seq)
    }

    /// Takes the next sequence number of a running run, or says why there is none.
    async fn next_seq(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<u64> {
        let next: Option<i64> = sqlx::query_scalar(
            "UPDATE flowstore_runs SET next_seq = next_seq + 1 WHERE tenant = ? AND run_id = ? AND status = 'running' RETURNING next_seq - 1",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_optional(&mut **tx)
        .await
        .op("runs.append")?;
        match next {
            Some(seq) => Ok(u64::try_from(seq).unwrap_or(0)),
            None => {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM flowstore_runs WHERE tenant = ? AND run_id = ?",
                )
                .bind(tenant.as_str())
                .bind(run.as_str())
                .fetch_optional(&mut **tx)
                .await
                .op("runs.append")?;
                Err(match exists {
                    Some(_) => kit::run_finished(run),
                    None => kit::run_missing(run),
                })
            }
        }
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.limit.check_new_run(&new)?;
        let run = Run::started(new);
        self.group_write(Write::Start(tenant.clone(), run.clone()))
            .await?;
        Ok(run)
    }

    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.limit.check_step(&step)?;
        self.group_write(Write::Append(tenant.clone(), run.clone(), step))
            .await
    }

    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.limit.check_outcome(&outcome)?;
        self.group_write(Write::Finish(tenant.clone(), run.clone(), outcome))
            .await?;
        RunStore::get(self, tenant, run).await
    }

    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.limit.check_run(&run)?;
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("runs.store_complete")?;
        Self::write_complete(&mut tx, tenant, &run).await?;
        tx.commit().await.op("runs.store_complete")
    }

    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        let _gate = self.write_gate().await;
        let mut tx = self.write_tx().await.op("runs.store_complete_batch")?;
        let mut out = Vec::with_capacity(runs.len());
        for run in &runs {
            if let Err(e) = self.limit.check_run(run) {
                out.push(Err(e));
                continue;
            }
            // A savepoint per run: a failing run is rolled back alone.
            let mut sp = sqlx::Acquire::begin(&mut *tx)
                .await
                .op("runs.store_complete_batch")?;
            match Self::write_complete(&mut sp, tenant, run).await {
                Ok(()) => {
                    sp.commit().await.op("runs.store_complete_batch")?;
                    out.push(Ok(()));
                }
                Err(e)
                    if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::InvalidInput) =>
                {
                    sp.rollback().await.op("runs.store_complete_batch")?;
                    out.push(Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await.op("runs.store_complete_batch")?;
        Ok(out)
    }

    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM flowstore_runs WHERE tenant = ? AND run_id = ?"
        ))
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_optional(&self.pool)
        .await
        .op("runs.get")?
        .as_ref()
        .map(run_of)
        .transpose()?
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
        let statuses: Option<String> = (!query.statuses.is_empty()).then(|| {
            format!(
                ",{},",
                query
                    .statuses
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        });
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM flowstore_runs WHERE tenant = ?1 ",
            "AND (?2 IS NULL OR workflow_id = ?2) AND (?3 IS NULL OR version = ?3) ",
            "AND (?4 IS NULL OR instr(?4, ',' || status || ',') > 0) ",
            "AND (?5 IS NULL OR started_at >= ?5) AND (?6 IS NULL OR started_at < ?6) ",
            "AND (?7 IS NULL OR started_at < ?7 OR (started_at = ?7 AND run_id < ?8)) ",
            "ORDER BY started_at DESC, run_id DESC LIMIT ?9"
        ))
        .bind(tenant.as_str())
        .bind(query.workflow_id.as_ref().map(WorkflowId::as_str))
        .bind(query.version.map(i64::from))
        .bind(statuses)
        .bind(query.started_from.map(Timestamp::as_micros))
        .bind(query.started_before.map(Timestamp::as_micros))
        .bind(after.as_ref().map(|a| a.0))
        .bind(after.as_ref().map(|a| a.1.clone()))
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .op("runs.query")?;
        // One damaged run never breaks the tenant's queries (W10).
        let (candidates, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(run_of))?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged run is skipped");
        }
        let last_read = match rows.last() {
            Some(r) => Some((
                r.try_get::<i64, _>("started_at").op("runs.decode")?,
                r.try_get::<String, _>("run_id").op("runs.decode")?,
            )),
            None => None,
        };
        Ok(Page::from_readable(
            RUN_CURSOR,
            candidates,
            rows.len(),
            limit,
            RunQuery::key,
            last_read,
        ))
    }

    async fn events(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<Vec<RunEvent>> {
        let mut tx = self.pool.begin().await.op("runs.events")?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM flowstore_runs WHERE tenant = ? AND run_id = ?")
                .bind(tenant.as_str())
                .bind(run.as_str())
                .fetch_optional(&mut *tx)
                .await
                .op("runs.events")?;
        if exists.is_none() {
            return Err(kit::run_missing(run));
        }
        let rows = sqlx::query("SELECT seq, at, kind FROM flowstore_run_events WHERE tenant = ? AND run_id = ? AND seq >= ? ORDER BY seq")
            .bind(tenant.as_str())
            .bind(run.as_str())
            .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .op("runs.events")?;
        tx.commit().await.op("runs.events")?;
        // A damaged event is logged and passed over; reading the whole run says why.
        let (events, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(event_of))?;
        for e in damaged {
            tracing::warn!(%tenant, %run, error = %e, "a damaged run event is skipped");
        }
        Ok(events)
    }

    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        // Subscribed before the first read, so no append after it goes unheard.
        let waiter = self.run_wakes.waiter(tenant, run);
        RunStore::events(self, tenant, run, u64::MAX).await?;
        Ok(poll_watch(
            self.clone(),
            tenant.clone(),
            run.clone(),
            from_seq,
            move || waiter.changed_or(tokio::time::sleep(WATCH_FALLBACK)),
        ))
    }

    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let done = sqlx::query("DELETE FROM flowstore_runs WHERE tenant = ? AND run_id = ?")
            .bind(tenant.as_str())
            .bind(run.as_str())
            .execute(&self.pool)
            .await
            .op("runs.delete")?;
        if done.rows_affected() == 0 {
            return Err(kit::run_missing(run));
        }
        self.run_wakes.notify_run(tenant, run);
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
