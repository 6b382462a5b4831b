//! Run logs in PostgreSQL (E1-E11).
//!
//! Events are rows of `flowstore_run_events`; steps are read back from the `step`
//! events, so log and steps cannot disagree. Every write is one statement, so one
//! round trip: an append takes the run's next sequence number and inserts the event
//! in a single CTE; a batch of whole runs inserts all heads and all events through
//! arrays (`UNNEST`), atomically, skipping ids that exist.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use storage_ports::adapter_kit::cursors::RUNS as RUN_CURSOR;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::poll_watch::poll_watch;
use storage_ports::{
    CompleteRun, Error, EventStream, NewRun, Page, PageRequest, Result, Run, RunError, RunEvent,
    RunEventKind, RunId, RunOutcome, RunQuery, RunStatus, RunStep, RunStore, TenantId, Timestamp,
};

use chrono::{DateTime, Utc};

use crate::error::SqlxResultExt;
use crate::group_commit::{Answer, Write};
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;
use storage_ports::adapter_kit::{stored_id, stored_u32, to_i64};

/// How long a watcher waits before it reads again unwoken. It is woken by the
/// `flowstore_runs` notification of every statement that adds events to its run (schema
/// 8), from any node; this only bounds what a lost notification can delay.
const WATCH_FALLBACK: Duration = Duration::from_secs(1);

macro_rules! run_columns {
    () => {
        "run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error"
    };
}

fn run_of(row: &PgRow) -> Result<Run> {
    let Json(inputs) = row.try_get("inputs").op("runs.decode")?;
    let output: Option<Json<Value>> = row.try_get("output").op("runs.decode")?;
    let error: Option<Json<RunError>> = row.try_get("error").op("runs.decode")?;
    Ok(Run {
        run_id: stored_id(row.try_get("run_id").op("runs.decode")?, "run id")?,
        workflow_id: stored_id(row.try_get("workflow_id").op("runs.decode")?, "workflow id")?,
        version: stored_u32(row.try_get("version").op("runs.decode")?, "version")?,
        status: RunStatus::parse(&row.try_get::<String, _>("status").op("runs.decode")?)
            .map_err(|e| Error::corrupt(e.message().to_owned()))?,
        inputs,
        started_at: from_pg(row.try_get("started_at").op("runs.decode")?),
        ended_at: row
            .try_get::<Option<DateTime<Utc>>, _>("ended_at")
            .op("runs.decode")?
            .map(from_pg),
        output: output.map(|o| o.0),
        error: error.map(|e| e.0),
    })
}

fn event_of(row: &PgRow) -> Result<RunEvent> {
    let seq: i64 = row.try_get("seq").op("runs.decode")?;
    let Json(kind) = row.try_get("kind").op("runs.decode")?;
    Ok(RunEvent {
        seq: u64::try_from(seq)
            .map_err(|_| Error::corrupt(format!("stored sequence {seq} is negative")))?,
        at: from_pg(row.try_get("at").op("runs.decode")?),
        kind,
    })
}

/// JSON text of `v`, refused when PostgreSQL could not store it (NUL characters).
pub(crate) fn json_text<T: serde::Serialize>(v: &T, what: &str) -> Result<String> {
    let text = serde_json::to_string(v)
        .map_err(|e| Error::invalid_input(format!("{what} cannot be stored: {e}")))?;
    // serde_json writes NUL as the escape \u0000, which JSONB refuses; an escaped
    // backslash before "u0000" is the only other way the text can contain it.
    if text.contains("\\u0000") && serde_json::from_str::<Value>(&text).is_ok_and(|v| has_nul(&v)) {
        return Err(Error::invalid_input(format!(
            "{what} contains a NUL character, which PostgreSQL cannot store"
        )));
    }
    Ok(text)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Column arrays of whole runs, for one `UNNEST` insert.
#[derive(Default)]
pub(crate) struct RunColumns {
    run_id: Vec<String>,
    workflow_id: Vec<String>,
    version: Vec<i64>,
    status: Vec<String>,
    inputs: Vec<String>,
    started_at: Vec<DateTime<Utc>>,
    ended_at: Vec<Option<DateTime<Utc>>>,
    output: Vec<Option<String>>,
    error: Vec<Option<String>>,
    next_seq: Vec<i64>,
    ev_run: Vec<String>,
    ev_seq: Vec<i64>,
    ev_at: Vec<DateTime<Utc>>,
    ev_kind: Vec<String>,
}

impl RunColumns {
    /// Adds one run, or says why it cannot be stored.
    fn push(&mut self, run: &CompleteRun) -> Result<()> {
        let r = &run.run;
        let events = run.events();
        let inputs = json_text(&r.inputs, "run inputs")?;
        let output = r
            .output
            .as_ref()
            .map(|o| json_text(o, "run output"))
            .transpose()?;
        let error = r
            .error
            .as_ref()
            .map(|e| json_text(e, "run error"))
            .transpose()?;
        let kinds = events
            .iter()
            .map(|e| json_text(&e.kind, "run step"))
            .collect::<Result<Vec<_>>>()?;
        self.run_id.push(r.run_id.as_str().to_owned());
        self.workflow_id.push(r.workflow_id.as_str().to_owned());
        self.version.push(i64::from(r.version));
        self.status.push(r.status.as_str().to_owned());
        self.inputs.push(inputs);
        self.started_at.push(to_pg(r.started_at)?);
        self.ended_at.push(r.ended_at.map(to_pg).transpose()?);
        self.output.push(output);
        self.error.push(error);
        self.next_seq.push(to_i64(events.len() as u64 + 1));
        for (e, kind) in events.iter().zip(kinds) {
            self.ev_run.push(r.run_id.as_str().to_owned());
            self.ev_seq.push(to_i64(e.seq));
            self.ev_at.push(to_pg(e.at)?);
            self.ev_kind.push(kind);
        }
        Ok(())
    }
}

/// Inserts whole runs with their events in one statement; returns the ids inserted
/// (the others existed already).
pub(crate) async fn insert_runs<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    tenant: &TenantId,
    cols: RunColumns,
) -> Result<HashSet<String>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "WITH ins AS ( \
           INSERT INTO flowstore_runs (tenant, run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error, next_seq) \
           SELECT $1, r.run_id, r.workflow_id, r.version, r.status, r.inputs::jsonb, r.started_at, r.ended_at, r.output::jsonb, r.error::jsonb, r.next_seq \
           FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::bigint[]) \
             AS r(run_id, workflow_id, version, status, inputs, started_at, ended_at, output, error, next_seq) \
           ON CONFLICT DO NOTHING RETURNING run_id), \
         ev AS ( \
           INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) \
           SELECT $1, e.run_id, e.seq, e.at, e.kind::jsonb \
           FROM UNNEST($12::text[], $13::bigint[], $14::timestamptz[], $15::text[]) AS e(run_id, seq, at, kind) \
           JOIN ins ON ins.run_id = e.run_id) \
         SELECT run_id FROM ins",
    )
    .bind(tenant.as_str())
    .bind(cols.run_id)
    .bind(cols.workflow_id)
    .bind(cols.version)
    .bind(cols.status)
    .bind(cols.inputs)
    .bind(cols.started_at)
    .bind(cols.ended_at)
    .bind(cols.output)
    .bind(cols.error)
    .bind(cols.next_seq)
    .bind(cols.ev_run)
    .bind(cols.ev_seq)
    .bind(cols.ev_at)
    .bind(cols.ev_kind)
    .fetch_all(exec)
    .await
    .op("runs.write")?;
    Ok(ids.into_iter().collect())
}

fn already_exists(id: &RunId) -> Error {
    kit::run_taken(id)
}

/// A run just started: a complete run with no steps, whose log is the Started event.
pub(crate) fn started_columns(new: NewRun) -> Result<(Run, RunColumns)> {
    let started = CompleteRun {
        run: Run::started(new),
        steps: Vec::new(),
    };
    let mut cols = RunColumns::default();
    cols.push(&started)?;
    Ok((started.run, cols))
}

impl PostgresStore {
    /// Why an append or finish touched no running run: finished, or missing.
    async fn not_running(&self, tenant: &TenantId, run: &RunId) -> Error {
        let exists: std::result::Result<Option<i32>, _> =
            sqlx::query_scalar("SELECT 1 FROM flowstore_runs WHERE tenant = $1 AND run_id = $2")
                .bind(tenant.as_str())
                .bind(run.as_str())
                .fetch_optional(&self.pool)
                .await
                .op("runs.append");
        match exists {
            Ok(Some(_)) => kit::run_finished(run),
            Ok(None) => kit::run_missing(run),
            Err(e) => e,
        }
    }

    /// The appends of a group commit in one statement: each one's sequence number,
    /// in the order given, or `None` where no running run had that id. Appends to one
    /// run take consecutive numbers in the order given.
    pub(crate) async fn append_rows(
        conn: &mut sqlx::PgConnection,
        appends: &[(&TenantId, &RunId, DateTime<Utc>, &str)],
    ) -> Result<Vec<Option<u64>>> {
        let mut tenants = Vec::with_capacity(appends.len());
        let mut runs = Vec::with_capacity(appends.len());
        let mut ats = Vec::with_capacity(appends.len());
        let mut kinds = Vec::with_capacity(appends.len());
        let mut ords = Vec::with_capacity(appends.len());
        for (i, (t, r, at, kind)) in appends.iter().enumerate() {
            tenants.push(t.as_str());
            runs.push(r.as_str());
            ats.push(*at);
            kinds.push(*kind);
            ords.push(i64::try_from(i).unwrap_or(i64::MAX));
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "WITH req AS ( \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[]) \
                 AS r(tenant, run_id, at, kind, ord)), \
             counts AS (SELECT tenant, run_id, count(*) AS n FROM req GROUP BY tenant, run_id), \
             upd AS (UPDATE flowstore_runs f SET next_seq = f.next_seq + c.n FROM counts c \
               WHERE f.tenant = c.tenant AND f.run_id = c.run_id AND f.status = 'running' \
               RETURNING f.tenant, f.run_id, f.next_seq - c.n AS first), \
             numbered AS (SELECT r.ord, r.tenant, r.run_id, r.at, r.kind, \
               u.first + row_number() OVER (PARTITION BY r.tenant, r.run_id ORDER BY r.ord) - 1 AS seq \
               FROM req r JOIN upd u ON u.tenant = r.tenant AND u.run_id = r.run_id), \
             ins AS (INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) \
               SELECT tenant, run_id, seq, at, kind::jsonb FROM numbered) \
             SELECT ord, seq FROM numbered",
        )
        .bind(tenants)
        .bind(runs)
        .bind(ats)
        .bind(kinds)
        .bind(ords)
        .fetch_all(&mut *conn)
        .await
        .op("runs.append")?;
        let mut out = vec![None; appends.len()];
        for (ord, seq) in rows {
            if let Some(slot) = usize::try_from(ord).ok().and_then(|i| out.get_mut(i)) {
                *slot = u64::try_from(seq).ok();
            }
        }
        Ok(out)
    }

    /// A finish's statement; the finished run, or `None` when no running run had
    /// that id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish_row(
        conn: &mut sqlx::PgConnection,
        tenant: &TenantId,
        run: &RunId,
        status: &str,
        ended_at: DateTime<Utc>,
        output: Option<&str>,
        error: Option<&str>,
        kind: &str,
    ) -> Result<Option<Run>> {
        let row = sqlx::query(concat!(
            "WITH s AS (UPDATE flowstore_runs SET next_seq = next_seq + 1, status = $3, ended_at = $4, \
               output = $5::jsonb, error = $6::jsonb \
               WHERE tenant = $1 AND run_id = $2 AND status = 'running' RETURNING ",
            run_columns!(),
            ", next_seq - 1 AS seq), \
             e AS (INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) \
               SELECT $1, $2, s.seq, $4, $7::jsonb FROM s) \
             SELECT ",
            run_columns!(),
            " FROM s"
        ))
        .bind(tenant.as_str())
        .bind(run.as_str())
        .bind(status)
        .bind(ended_at)
        .bind(output)
        .bind(error)
        .bind(kind)
        .fetch_optional(&mut *conn)
        .await
        .op("runs.finish")?;
        row.as_ref().map(run_of).transpose()
    }

    pub(crate) async fn start_in<'e>(
        exec: impl sqlx::PgExecutor<'e>,
        tenant: &TenantId,
        new: NewRun,
    ) -> Result<Run> {
        let id = new.run_id.clone();
        let (run, cols) = started_columns(new)?;
        if insert_runs(exec, tenant, cols).await?.is_empty() {
            return Err(already_exists(&id));
        }
        Ok(run)
    }
}

#[async_trait]
impl RunStore for PostgresStore {
    async fn start(&self, tenant: &TenantId, new: NewRun) -> Result<Run> {
        self.limit.check_new_run(&new)?;
        let id = new.run_id.clone();
        match self.group_write(Write::Start(tenant.clone(), new)).await? {
            Answer::Started(Some(run)) => Ok(run),
            _ => Err(already_exists(&id)),
        }
    }

    async fn append(&self, tenant: &TenantId, run: &RunId, step: RunStep) -> Result<u64> {
        self.limit.check_step(&step)?;
        let write = Write::Append {
            tenant: tenant.clone(),
            run: run.clone(),
            at: to_pg(step.at())?,
            kind: json_text(&RunEventKind::Step(step), "run step")?,
        };
        match self.group_write(write).await? {
            Answer::Appended(Some(seq)) => Ok(seq),
            _ => Err(self.not_running(tenant, run).await),
        }
    }

    async fn finish(&self, tenant: &TenantId, run: &RunId, outcome: RunOutcome) -> Result<Run> {
        self.limit.check_outcome(&outcome)?;
        let write = Write::Finish {
            tenant: tenant.clone(),
            run: run.clone(),
            status: outcome.status.as_str(),
            ended_at: to_pg(outcome.ended_at)?,
            output: outcome
                .output
                .as_ref()
                .map(|o| json_text(o, "run output"))
                .transpose()?,
            error: outcome
                .error
                .as_ref()
                .map(|e| json_text(e, "run error"))
                .transpose()?,
            kind: json_text(
                &RunEventKind::Finished {
                    status: outcome.status,
                },
                "run event",
            )?,
        };
        match self.group_write(write).await? {
            Answer::Finished(Some(r)) => Ok(r),
            _ => Err(self.not_running(tenant, run).await),
        }
    }

    async fn store_complete(&self, tenant: &TenantId, run: CompleteRun) -> Result<()> {
        self.limit.check_run(&run)?;
        let mut cols = RunColumns::default();
        cols.push(&run)?;
        if insert_runs(&self.pool, tenant, cols).await?.is_empty() {
            return Err(already_exists(&run.run.run_id));
        }
        Ok(())
    }

    async fn store_complete_batch(
        &self,
        tenant: &TenantId,
        runs: Vec<CompleteRun>,
    ) -> Result<Vec<Result<()>>> {
        // Checked here, per run; what passes goes in one statement. A repeated id in
        // the batch is a conflict of its later occurrences.
        let mut out: Vec<Option<Result<()>>> = Vec::with_capacity(runs.len());
        let mut cols = RunColumns::default();
        let mut sent: HashMap<&str, usize> = HashMap::new();
        for (i, run) in runs.iter().enumerate() {
            let id = run.run.run_id.as_str();
            let checked = self
                .limit
                .check_run(run)
                .and_then(|()| match sent.contains_key(id) {
                    true => Err(already_exists(&run.run.run_id)),
                    false => cols.push(run),
                });
            match checked {
                Ok(()) => {
                    sent.insert(id, i);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let inserted = if sent.is_empty() {
            HashSet::new()
        } else {
            insert_runs(&self.pool, tenant, cols).await?
        };
        for (id, i) in sent {
            out[i] = Some(if inserted.contains(id) {
                Ok(())
            } else {
                Err(already_exists(&runs[i].run.run_id))
            });
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::backend("a batch entry got no result"))))
            .collect())
    }

    async fn get(&self, tenant: &TenantId, run: &RunId) -> Result<Run> {
        sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM flowstore_runs WHERE tenant = $1 AND run_id = $2"
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
        // Only the filters given become predicates, so the planner sees the real
        // query and picks the matching index (E5).
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
            "SELECT ",
            run_columns!(),
            " FROM flowstore_runs WHERE tenant = "
        ));
        sql.push_bind(tenant.as_str());
        if let Some(w) = &query.workflow_id {
            sql.push(" AND workflow_id = ").push_bind(w.as_str());
        }
        if let Some(v) = query.version {
            sql.push(" AND version = ").push_bind(i64::from(v));
        }
        if !query.statuses.is_empty() {
            let names: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
            sql.push(" AND status = ANY(").push_bind(names).push(")");
        }
        if let Some(t) = query.started_from {
            sql.push(" AND started_at >= ").push_bind(to_pg(t)?);
        }
        if let Some(t) = query.started_before {
            sql.push(" AND started_at < ").push_bind(to_pg(t)?);
        }
        if let Some((at, id)) = &after {
            sql.push(" AND (started_at, run_id) < (")
                .push_bind(to_pg(Timestamp::from_micros(*at))?)
                .push(", ")
                .push_bind(id.clone())
                .push(")");
        }
        sql.push(" ORDER BY started_at DESC, run_id DESC LIMIT ")
            .push_bind(to_i64(limit as u64 + 1));
        let rows = sql.build().fetch_all(&self.pool).await.op("runs.query")?;
        // One damaged run never breaks the tenant's queries (W10).
        let (candidates, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(run_of))?;
        for e in damaged {
            tracing::warn!(%tenant, error = %e, "a damaged run is skipped");
        }
        let last_read = match rows.last() {
            Some(r) => Some((
                from_pg(r.try_get("started_at").op("runs.decode")?).as_micros(),
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
        let rows = sqlx::query("SELECT seq, at, kind FROM flowstore_run_events WHERE tenant = $1 AND run_id = $2 AND seq >= $3 ORDER BY seq")
            .bind(tenant.as_str())
            .bind(run.as_str())
            .bind(to_i64(from_seq))
            .fetch_all(&self.pool)
            .await
            .op("runs.events")?;
        if rows.is_empty() {
            // Every run has event 1, so nothing from the start means no run; later,
            // it may only mean nothing new yet.
            RunStore::get(self, tenant, run).await?;
        }
        // A damaged event is logged and passed over; reading the whole run says why.
        let (events, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(event_of))?;
        for e in damaged {
            tracing::warn!(%tenant, %run, error = %e, "a damaged run event is skipped");
        }
        Ok(events)
    }

    async fn watch(&self, tenant: &TenantId, run: &RunId, from_seq: u64) -> Result<EventStream> {
        // Subscribed before the first read, so no notification after it goes unheard.
        let waiter = self.run_wakes.waiter(tenant, run);
        RunStore::get(self, tenant, run).await?;
        Ok(poll_watch(
            self.clone(),
            tenant.clone(),
            run.clone(),
            from_seq,
            move || waiter.changed_or(tokio::time::sleep(WATCH_FALLBACK)),
        ))
    }

    async fn delete(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let done = sqlx::query("DELETE FROM flowstore_runs WHERE tenant = $1 AND run_id = $2")
            .bind(tenant.as_str())
            .bind(run.as_str())
            .execute(&self.pool)
            .await
            .op("runs.delete")?;
        if done.rows_affected() == 0 {
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
