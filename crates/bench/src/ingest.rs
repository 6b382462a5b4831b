//! P1, run-log ingest: 8 concurrent writers each store runs step by step (start, 10 node
//! executions, 5 variable snapshots, finish: 17 calls a run), through flowstore and
//! through the raw driver doing the same inserts into the same schema.

use std::sync::Arc;

use serde_json::json;
use storage_ports::{
    NewRun, NodeExecution, NodeId, NodeStatus, RunEventKind, RunId, RunOutcome, RunStatus, RunStep,
    StoreSet, TenantId, Timestamp, VariableSnapshot, WorkflowId,
};

use crate::backends::Backend;
use crate::measure::{rotate, Figure, Side};

const WRITERS: usize = 8;

fn steps() -> anyhow::Result<Vec<RunStep>> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    for n in 0..10 {
        out.push(RunStep::Node(NodeExecution {
            node_id: NodeId::new(format!("node-{n}"))?,
            node_type: "http".into(),
            status: NodeStatus::Succeeded,
            inputs: json!({"url": "https://example.com/api", "n": n}),
            outputs: json!({"status": 200, "bytes": 1234}),
            error: None,
            retries: 0,
            started_at: now,
            ended_at: Some(now),
        }));
    }
    for v in 0..5 {
        out.push(RunStep::Snapshot(VariableSnapshot {
            name: format!("var{v}"),
            old_value: json!(null),
            new_value: json!({"v": v, "tags": ["a", "b"]}),
            at: now,
        }));
    }
    Ok(out)
}

async fn ours(set: StoreSet, tenant: TenantId, runs_each: usize) -> anyhow::Result<u64> {
    let steps = Arc::new(steps()?);
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (set, t, steps) = (set.clone(), tenant.clone(), steps.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..runs_each {
                let id = RunId::generate();
                set.runs
                    .start(
                        &t,
                        NewRun {
                            run_id: id.clone(),
                            workflow_id: WorkflowId::new("bench")?,
                            version: 1,
                            inputs: json!({"order": 42}),
                            started_at: Timestamp::now(),
                        },
                    )
                    .await?;
                for s in steps.iter() {
                    set.runs.append(&t, &id, s.clone()).await?;
                }
                set.runs
                    .finish(
                        &t,
                        &id,
                        RunOutcome::succeeded(json!({"ok": true}), Timestamp::now()),
                    )
                    .await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((WRITERS * runs_each) as u64)
}

/// What the raw side writes per run: the same JSON, serialized as the adapter does.
struct RawRun {
    inputs: String,
    kinds: Vec<String>,
    finished: String,
    output: String,
}

fn raw_run() -> anyhow::Result<RawRun> {
    Ok(RawRun {
        inputs: json!({"order": 42}).to_string(),
        kinds: steps()?
            .into_iter()
            .map(|s| serde_json::to_string(&RunEventKind::Step(s)))
            .collect::<Result<_, _>>()?,
        finished: serde_json::to_string(&RunEventKind::Finished {
            status: RunStatus::Succeeded,
        })?,
        output: json!({"ok": true}).to_string(),
    })
}

/// The raw driver storing `runs_each` runs per writer: call by call (`whole` false:
/// the statements flowstore makes, each committed as flowstore commits it), or each
/// run in one transaction (`whole` true: what a client that buffers its run writes).
async fn raw(
    backend: Arc<Backend>,
    tenant: TenantId,
    runs_each: usize,
    whole: bool,
) -> anyhow::Result<u64> {
    let shape = Arc::new(raw_run()?);
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (b, t, shape) = (backend.clone(), tenant.as_str().to_owned(), shape.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..runs_each {
                let id = RunId::generate().as_str().to_owned();
                let now = Timestamp::now().as_micros();
                match &*b {
                    Backend::Sqlite { raw, .. } if whole => {
                        sqlite_run_whole(raw, &t, &id, now, &shape).await?
                    }
                    Backend::Sqlite { raw, .. } => sqlite_run(raw, &t, &id, now, &shape).await?,
                    Backend::Postgres { raw, .. } => {
                        postgres_run(raw, &t, &id, now, &shape, whole).await?
                    }
                    Backend::Redis { raw, .. } => {
                        redis_run(raw.clone(), &t, &id, now, &shape).await?
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((WRITERS * runs_each) as u64)
}

/// A raw call of one run: its statements, as flowstore's SQLite adapter makes them.
enum SqliteCall<'a> {
    Start,
    Step(&'a str),
    Finish,
}

async fn sqlite_call(
    c: &mut sqlx::SqliteConnection,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
    call: SqliteCall<'_>,
) -> anyhow::Result<()> {
    let next = "UPDATE flowstore_runs SET next_seq = next_seq + 1 WHERE tenant = ? AND run_id = ? AND status = 'running' RETURNING next_seq - 1";
    let event =
        "INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) VALUES (?, ?, ?, ?, ?)";
    match call {
        SqliteCall::Start => {
            sqlx::query("INSERT INTO flowstore_runs (run_id, workflow_id, version, status, inputs, started_at, tenant, next_seq) VALUES (?, 'bench', 1, 'running', ?, ?, ?, 2)")
                .bind(id).bind(&r.inputs).bind(now).bind(t).execute(&mut *c).await?;
            sqlx::query(event)
                .bind(t)
                .bind(id)
                .bind(1_i64)
                .bind(now)
                .bind("{\"event\":\"started\"}")
                .execute(&mut *c)
                .await?;
        }
        SqliteCall::Step(kind) => {
            let seq: i64 = sqlx::query_scalar(next)
                .bind(t)
                .bind(id)
                .fetch_one(&mut *c)
                .await?;
            sqlx::query(event)
                .bind(t)
                .bind(id)
                .bind(seq)
                .bind(now)
                .bind(kind)
                .execute(&mut *c)
                .await?;
        }
        SqliteCall::Finish => {
            let seq: i64 = sqlx::query_scalar(next)
                .bind(t)
                .bind(id)
                .fetch_one(&mut *c)
                .await?;
            sqlx::query("UPDATE flowstore_runs SET status = 'succeeded', ended_at = ?, output = ? WHERE tenant = ? AND run_id = ?")
                .bind(now).bind(&r.output).bind(t).bind(id).execute(&mut *c).await?;
            sqlx::query(event)
                .bind(t)
                .bind(id)
                .bind(seq)
                .bind(now)
                .bind(&r.finished)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// The calls of one run, in order.
fn sqlite_calls(r: &RawRun) -> impl Iterator<Item = SqliteCall<'_>> {
    std::iter::once(SqliteCall::Start)
        .chain(r.kinds.iter().map(|k| SqliteCall::Step(k)))
        .chain(std::iter::once(SqliteCall::Finish))
}

/// A run call by call, each call in a transaction of its own.
async fn sqlite_run(
    p: &sqlx::SqlitePool,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
) -> anyhow::Result<()> {
    for call in sqlite_calls(r) {
        let mut tx = p.begin().await?;
        sqlite_call(&mut tx, t, id, now, r, call).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A whole run in one transaction, taking the write lock from the start (waited for
/// under busy_timeout, as flowstore takes it).
async fn sqlite_run_whole(
    p: &sqlx::SqlitePool,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
) -> anyhow::Result<()> {
    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
    for call in sqlite_calls(r) {
        sqlite_call(&mut tx, t, id, now, r, call).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One run through the raw driver: call by call, each statement committed alone; or
/// in one transaction, done again when PostgreSQL picks it as a deadlock victim (8
/// writers of one tenant meet on its counter rows), as a client writing whole runs
/// must.
async fn postgres_run(
    p: &sqlx::PgPool,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
    whole: bool,
) -> anyhow::Result<()> {
    if !whole {
        let mut conn = p.acquire().await?;
        return Ok(postgres_statements(&mut conn, t, id, now, r).await?);
    }
    let mut tries = 0;
    loop {
        let mut tx = p.begin().await?;
        let done = postgres_statements(&mut tx, t, id, now, r).await;
        let done = match done {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => return Ok(()),
            Err(e)
                if tries < 20
                    && e.as_database_error()
                        .and_then(|d| d.code())
                        .is_some_and(|c| c == "40P01") =>
            {
                tries += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The statements of one run, as flowstore's PostgreSQL adapter makes them.
async fn postgres_statements(
    conn: &mut sqlx::postgres::PgConnection,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
) -> Result<(), sqlx::Error> {
    // Times are timestamptz (schema 4); the raw side converts in the statement.
    #[allow(clippy::cast_precision_loss)]
    let now = now as f64 / 1e6;
    sqlx::query("WITH ins AS (INSERT INTO flowstore_runs (tenant, run_id, workflow_id, version, status, inputs, started_at, next_seq) VALUES ($1, $2, 'bench', 1, 'running', $3::jsonb, to_timestamp($4), 2) RETURNING run_id) \
                 INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) SELECT $1, run_id, 1, to_timestamp($4), '{\"event\":\"started\"}'::jsonb FROM ins")
        .bind(t).bind(id).bind(&r.inputs).bind(now).execute(&mut *conn).await?;
    for kind in &r.kinds {
        sqlx::query("WITH s AS (UPDATE flowstore_runs SET next_seq = next_seq + 1 WHERE tenant = $1 AND run_id = $2 AND status = 'running' RETURNING next_seq - 1 AS seq) \
                     INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) SELECT $1, $2, s.seq, to_timestamp($3), $4::jsonb FROM s")
            .bind(t).bind(id).bind(now).bind(kind).execute(&mut *conn).await?;
    }
    sqlx::query("WITH s AS (UPDATE flowstore_runs SET next_seq = next_seq + 1, status = 'succeeded', ended_at = to_timestamp($3), output = $4::jsonb WHERE tenant = $1 AND run_id = $2 AND status = 'running' RETURNING next_seq - 1 AS seq) \
                 INSERT INTO flowstore_run_events (tenant, run_id, seq, at, kind) SELECT $1, $2, s.seq, to_timestamp($3), $5::jsonb FROM s")
        .bind(t).bind(id).bind(now).bind(&r.output).bind(&r.finished).execute(&mut *conn).await?;
    Ok(())
}

async fn redis_run(
    mut c: redis::aio::ConnectionManager,
    t: &str,
    id: &str,
    now: i64,
    r: &RawRun,
) -> anyhow::Result<()> {
    let p = format!("flowstore:{{{t}}}:");
    let key = format!("{p}run:{id}");
    let events = format!("{key}:events");
    let () = redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(&key)
        .arg(&[
            "head",
            r.inputs.as_str(),
            "status",
            "running",
            "wf",
            "bench",
        ])
        .arg("started")
        .arg(now)
        .arg("next")
        .arg(2)
        .ignore()
        .cmd("XADD")
        .arg(&events)
        .arg("1-0")
        .arg("at")
        .arg(now)
        .arg("k")
        .arg("{\"event\":\"started\"}")
        .ignore()
        .cmd("ZADD")
        .arg(format!("{p}runs"))
        .arg(now)
        .arg(id)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{p}runs:wf:bench"))
        .arg(now)
        .arg(id)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{p}runs:st:running"))
        .arg(now)
        .arg(id)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{p}runs:wf:bench:st:running"))
        .arg(now)
        .arg(id)
        .ignore()
        .query_async(&mut c)
        .await?;
    let append = redis::Script::new(
        "local seq = redis.call('HINCRBY', KEYS[1], 'next', 1) - 1 \
         redis.call('XADD', KEYS[2], seq .. '-0', 'at', ARGV[1], 'k', ARGV[2]) return seq",
    );
    for kind in &r.kinds {
        let _: i64 = append
            .key(&key)
            .key(&events)
            .arg(now)
            .arg(kind)
            .invoke_async(&mut c)
            .await?;
    }
    let _: i64 = append
        .key(&key)
        .key(&events)
        .arg(now)
        .arg(&r.finished)
        .invoke_async(&mut c)
        .await?;
    let () = redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(&key)
        .arg(&["status", "succeeded"])
        .ignore()
        .cmd("ZREM")
        .arg(format!("{p}runs:st:running"))
        .arg(id)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{p}runs:st:succeeded"))
        .arg(now)
        .arg(id)
        .ignore()
        .query_async(&mut c)
        .await?;
    Ok(())
}

/// P1 on one backend: beside the raw driver call by call (the target: 1.5x on the
/// SQL backends, where flowstore's group commit shares commits the raw calls each
/// pay for; 0.8x on Redis), and, on SQLite and PostgreSQL, beside the raw driver
/// writing each run in one transaction (target 0.8x).
pub async fn run(
    backend: Arc<Backend>,
    runs_each: usize,
    rounds: usize,
) -> anyhow::Result<Vec<Figure>> {
    let set = backend.set();
    let sql = !matches!(&*backend, Backend::Redis { .. });
    let tenant = |side: &str| TenantId::new(format!("p1{side}{}", RunId::generate()));
    let mut sides: Vec<Side<'_>> = vec![
        Box::new(|_| {
            let set = set.clone();
            Box::pin(async move { ours(set, tenant("o")?, runs_each).await })
        }),
        Box::new(|_| {
            let b = backend.clone();
            Box::pin(async move { raw(b, tenant("r")?, runs_each, false).await })
        }),
    ];
    if sql {
        sides.push(Box::new(|_| {
            let b = backend.clone();
            Box::pin(async move { raw(b, tenant("w")?, runs_each, true).await })
        }));
    }
    let rates = rotate(rounds, &mut sides).await?;
    drop(sides);
    let ours = rates[0];
    let sizes = format!("{} runs x {rounds} rounds each side", WRITERS * runs_each);
    let per_call_target = if sql { 1.5 } else { 0.8 };
    let mut out = vec![Figure {
        scenario: "P1",
        name: "run-log ingest, step by step (17 calls a run), 8 writers".into(),
        backend: backend.name(),
        unit: "runs/s",
        ours,
        baseline: rates[1],
        baseline_name: "raw driver, the same statements, each call committed".into(),
        ratio: ours / rates[1].max(1e-9),
        target: if sql {
            ">= 1.5x raw call by call"
        } else {
            ">= 0.8x raw"
        },
        met: ours / rates[1].max(1e-9) >= per_call_target,
        sizes: sizes.clone(),
    }];
    if let Some(&whole) = rates.get(2) {
        out.push(Figure {
            scenario: "P1",
            name: "run-log ingest, step by step, vs a whole run per transaction".into(),
            backend: backend.name(),
            unit: "runs/s",
            ours,
            baseline: whole,
            baseline_name: "raw driver, the same statements, one transaction per run".into(),
            ratio: ours / whole.max(1e-9),
            target: ">= 0.8x raw one transaction per run",
            met: ours / whole.max(1e-9) >= 0.8,
            sizes,
        });
    }
    Ok(out)
}
