//! The operator subcommands: workflows, runs, queue, stats. Each prints a table for
//! people or, with `--json`, one JSON document for scripts.

use serde::Serialize;
use serde_json::{json, Value};
use storage_ports::{
    CancelOutcome, CatchUp, ErrorKind, FinishedState, HistoryQuery, JobId, JobInfo, JobStatus,
    NewJob, NewSchedule, NewWorkflowVersion, PageRequest, QueueName, RunId, RunQuery, RunStatus,
    ScheduleName, TenantId, Timestamp, Timing, WorkflowId,
};
use storage_wiring::Storage;

use crate::cli::{MetricsCommand, QueueCommand, RunsCommand, ScheduleCommand, WorkflowCommand};

/// A command failure, with the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the input is wrong.
    Invalid(String),
    /// Exit 3: the thing asked for does not exist.
    NotFound(String),
    /// Exit 1: anything else.
    Other(String),
}

impl From<storage_ports::Error> for Failure {
    fn from(e: storage_ports::Error) -> Self {
        match e.kind() {
            ErrorKind::NotFound => Self::NotFound(e.to_string()),
            ErrorKind::InvalidInput => Self::Invalid(e.to_string()),
            _ => Self::Other(e.to_string()),
        }
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self::Invalid(s)
    }
}

pub(crate) type Out = Result<(), Failure>;

/// What every command needs of the global options.
#[derive(Debug, Clone)]
pub struct Ctx {
    tenant: Option<String>,
    json: bool,
}

impl Ctx {
    pub(crate) fn new(global: &crate::cli::Global) -> Self {
        Self {
            tenant: global.tenant.clone(),
            json: global.json,
        }
    }

    /// The tenant given with `--tenant`, else `default`.
    pub(crate) fn tenant(&self) -> Result<TenantId, Failure> {
        self.tenant_or("default")
    }

    /// The tenant given with `--tenant`, else `fallback`.
    pub(crate) fn tenant_or(&self, fallback: &str) -> Result<TenantId, Failure> {
        Ok(TenantId::new(self.tenant.as_deref().unwrap_or(fallback))?)
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

/// Prints `value` as JSON with `--json`, else the table.
pub(crate) fn emit<T: Serialize>(ctx: &Ctx, value: &T, table: impl FnOnce() -> String) {
    let text = if ctx.json {
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    } else {
        table()
    };
    // A closed stdout (piped into `head`) is not a failure of the command.
    let _ = std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        format!("{text}\n").as_bytes(),
    );
}

fn read_definition(path: &str) -> Result<Value, Failure> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Other(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::Invalid(format!("cannot read {path}: {e}")))?
    };
    serde_saphyr::from_str(&text)
        .map_err(|e| Failure::Invalid(format!("{path} is not YAML or JSON: {e}")))
}

/// `flowstore workflow put|get|versions|lineage|diff|list|delete`.
pub async fn workflow(storage: &Storage, ctx: &Ctx, command: WorkflowCommand) -> Out {
    let view = storage.tenant(ctx.tenant()?);
    match command {
        WorkflowCommand::Put {
            id,
            file,
            parent,
            version,
            author,
        } => {
            let id = WorkflowId::new(id)?;
            let mut new = NewWorkflowVersion::next(id, read_definition(&file)?);
            new.version = version;
            new.parent = parent;
            new.author = author;
            let v = view.put_workflow(new).await?;
            emit(ctx, &v.meta, || {
                format!(
                    "stored {} version {} ({})",
                    v.meta.workflow_id, v.meta.version, v.meta.content_hash
                )
            });
        }
        WorkflowCommand::Get { id, version } => {
            let id = WorkflowId::new(id)?;
            let v = match version {
                Some(n) => view.workflow(&id, n).await?,
                None => view.latest_workflow(&id).await?,
            };
            emit(ctx, &v, || serde_saphyr::to_string(&v).unwrap_or_default());
        }
        WorkflowCommand::Diff { id, from, to } => {
            return crate::diff::workflow_diff(&view, ctx, &WorkflowId::new(id)?, from, to).await;
        }
        WorkflowCommand::Versions { id } => {
            let metas = view.workflow_versions(&WorkflowId::new(id)?).await?;
            emit(ctx, &metas, || version_table(&metas));
        }
        WorkflowCommand::Lineage { id, version } => {
            let id = WorkflowId::new(id)?;
            let v = match version {
                Some(n) => n,
                None => view.latest_workflow(&id).await?.meta.version,
            };
            let metas = view.workflow_lineage(&id, v).await?;
            emit(ctx, &metas, || version_table(&metas));
        }
        WorkflowCommand::List => {
            let mut all = Vec::new();
            let mut page = PageRequest::first(500);
            loop {
                let p = view.list_workflows(page).await?;
                all.extend(p.items);
                match p.next {
                    Some(c) => page = PageRequest::after(500, c),
                    None => break,
                }
            }
            emit(ctx, &all, || {
                let mut t = format!("{:<32} {:<8} {}", "WORKFLOW", "LATEST", "CREATED");
                for m in &all {
                    t.push_str(&format!(
                        "\n{:<32} {:<8} {}",
                        m.workflow_id, m.version, m.created_at
                    ));
                }
                t
            });
        }
        WorkflowCommand::Delete { id, version: v } => {
            let id = WorkflowId::new(id)?;
            view.delete_workflow(&id, v).await?;
            emit(
                ctx,
                &json!({"deleted": {"workflow": id, "version": v}}),
                || format!("deleted {id} version {v}"),
            );
        }
    }
    Ok(())
}

/// The versions table of `workflow versions` and `workflow lineage`.
fn version_table(metas: &[storage_ports::VersionMeta]) -> String {
    let mut t = format!(
        "{:<8} {:<8} {:<28} {:<12} {}",
        "VERSION", "PARENT", "CREATED", "AUTHOR", "HASH"
    );
    for m in metas {
        let parent = m.parent.map_or("-".to_owned(), |p| p.to_string());
        t.push_str(&format!(
            "\n{:<8} {:<8} {:<28} {:<12} {}",
            m.version,
            parent,
            m.created_at,
            m.author.as_deref().unwrap_or("-"),
            m.content_hash
        ));
    }
    t
}

/// `flowstore runs query|show|events|delete|import`.
pub async fn runs(storage: &Storage, ctx: &Ctx, command: RunsCommand) -> Out {
    let view = storage.tenant(ctx.tenant()?);
    match command {
        RunsCommand::Import { file } => return crate::prune::import(storage, ctx, &file).await,
        RunsCommand::Query {
            workflow,
            version,
            status,
            since_hours,
            limit,
        } => {
            let mut q = RunQuery {
                limit,
                ..RunQuery::default()
            };
            q.workflow_id = workflow.map(WorkflowId::new).transpose()?;
            q.version = version;
            q.statuses = status
                .iter()
                .map(|s| RunStatus::parse(s))
                .collect::<Result<_, _>>()?;
            if let Some(h) = since_hours {
                let back = std::time::Duration::from_secs(u64::from(h) * 3600);
                q.started_from = Some(Timestamp::now().minus(back));
            }
            let page = view.query_runs(q).await?;
            emit(ctx, &page.items, || {
                let mut t = format!(
                    "{:<34} {:<24} {:<4} {:<10} {}",
                    "RUN", "WORKFLOW", "VER", "STATUS", "STARTED"
                );
                for r in &page.items {
                    t.push_str(&format!(
                        "\n{:<34} {:<24} {:<4} {:<10} {}",
                        r.run_id,
                        r.workflow_id,
                        r.version,
                        r.status.as_str(),
                        r.started_at
                    ));
                }
                t
            });
        }
        RunsCommand::Show { run } => {
            let r = view.complete_run(&RunId::new(run)?).await?;
            emit(ctx, &r, || serde_saphyr::to_string(&r).unwrap_or_default());
        }
        RunsCommand::Events { run, from } => {
            let events = view.run_events(&RunId::new(run)?, from).await?;
            emit(ctx, &events, || {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{:>5} {} {}",
                            e.seq,
                            e.at,
                            serde_json::to_string(&e.kind).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RunsCommand::Delete { run } => {
            let id = RunId::new(run)?;
            view.delete_run(&id).await?;
            emit(ctx, &json!({"deleted": id}), || format!("deleted run {id}"));
        }
    }
    Ok(())
}

/// `flowstore queue <command> <queue> ...`.
pub async fn queue(storage: &Storage, ctx: &Ctx, command: QueueCommand) -> Out {
    let t = ctx.tenant()?;
    let ports = storage.ports();
    match command {
        QueueCommand::Stats { queue } => {
            let q = QueueName::new(queue)?;
            let s = ports.queue.stats(&t, &q).await?;
            // Running jobs per concurrency key (Q18), where the backend counts them.
            let by_key = match ports.queue.running_by_key(&t, &q).await {
                Ok(k) => k,
                Err(e) if e.kind() == ErrorKind::Unsupported => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let mut doc = serde_json::to_value(s)
                .map_err(|e| Failure::Other(format!("stats cannot be printed: {e}")))?;
            if let Some(map) = doc.as_object_mut() {
                let keys: serde_json::Map<String, Value> = by_key
                    .iter()
                    .map(|(k, n)| (k.clone(), Value::from(*n)))
                    .collect();
                map.insert("running_by_key".into(), Value::Object(keys));
            }
            emit(ctx, &doc, || {
                let mut out = format!(
                    "pending {}  scheduled {}  running {}  dead {}  completed {}  cancelled {}{}",
                    s.pending,
                    s.scheduled,
                    s.running,
                    s.dead,
                    s.completed,
                    s.cancelled,
                    if s.paused { "  (paused)" } else { "" }
                );
                if !by_key.is_empty() {
                    out.push_str("\nrunning per concurrency key:");
                    for (k, n) in &by_key {
                        out.push_str(&format!("\n  {k:<32} {n}"));
                    }
                }
                out
            });
        }
        QueueCommand::Dead { queue, limit } => {
            let dead = ports.queue.dead(&t, &QueueName::new(queue)?, limit).await?;
            emit(ctx, &dead, || {
                let mut out = format!(
                    "{:<34} {:<9} {:<28} {}",
                    "JOB", "ATTEMPTS", "DIED", "LAST ERROR"
                );
                for d in &dead {
                    out.push_str(&format!(
                        "\n{:<34} {:<9} {:<28} {}",
                        d.job_id, d.attempts, d.died_at, d.last_error
                    ));
                }
                out
            });
        }
        QueueCommand::Requeue { queue, job } => {
            let job = JobId::new(job)?;
            ports
                .queue
                .requeue(&t, &QueueName::new(queue)?, &job)
                .await?;
            emit(ctx, &json!({"requeued": job}), || format!("requeued {job}"));
        }
        QueueCommand::Pause { queue } => {
            let q = QueueName::new(queue)?;
            ports.queue.pause(&t, &q).await?;
            emit(ctx, &json!({"paused": q}), || {
                format!("paused {q}: it delivers nothing until `flowstore queue resume {q}`")
            });
        }
        QueueCommand::Resume { queue } => {
            let q = QueueName::new(queue)?;
            ports.queue.resume(&t, &q).await?;
            emit(ctx, &json!({"resumed": q}), || format!("resumed {q}"));
        }
        QueueCommand::Cancel { queue, job } => {
            let job = JobId::new(job)?;
            let outcome = ports
                .queue
                .cancel(&t, &QueueName::new(queue)?, &job)
                .await?;
            emit(ctx, &json!({"job": job, "outcome": outcome}), || {
                match outcome {
                CancelOutcome::Cancelled => format!("cancelled {job}"),
                CancelOutcome::Requested => format!(
                    "cancel of {job} requested: it is running, and its worker is told at its next heartbeat or ack"
                ),
            }
            });
        }
        QueueCommand::Job { queue, job } => {
            let info = ports
                .queue
                .job(&t, &QueueName::new(queue)?, &JobId::new(job)?)
                .await?;
            emit(ctx, &info, || job_text(&info));
        }
        QueueCommand::Jobs {
            queue,
            state,
            limit,
        } => {
            let status = JobStatus::parse(&state)?;
            let found = ports
                .queue
                .jobs(&t, &QueueName::new(queue)?, status, limit)
                .await?;
            emit(ctx, &found, || jobs_table(&found));
        }
        QueueCommand::History {
            queue,
            state,
            limit,
        } => {
            let q = QueueName::new(queue)?;
            let state = state.as_deref().map(FinishedState::parse).transpose()?;
            let mut found: Vec<JobInfo> = Vec::new();
            let mut query = HistoryQuery {
                state,
                page: PageRequest::first(limit.clamp(1, 500)),
            };
            while found.len() < limit {
                let page = ports.queue.history(&t, &q, &query).await?;
                found.extend(page.items);
                match page.next {
                    Some(c) => {
                        query.page = PageRequest::after((limit - found.len()).clamp(1, 500), c)
                    }
                    None => break,
                }
            }
            found.truncate(limit);
            emit(ctx, &found, || jobs_table(&found));
        }
        QueueCommand::Schedules(command) => schedules(ports, ctx, &t, command).await?,
        QueueCommand::Reenqueue { queue, job } => {
            let job = JobId::new(job)?;
            let new = ports
                .queue
                .reenqueue(&t, &QueueName::new(queue)?, &job)
                .await?;
            emit(ctx, &json!({"from": job, "job": new.job_id}), || {
                format!("enqueued {} again as {}", job, new.job_id)
            });
        }
    }
    Ok(())
}

/// `flowstore queue schedules ...`.
async fn schedules(
    ports: &storage_ports::StoreSet,
    ctx: &Ctx,
    t: &TenantId,
    command: ScheduleCommand,
) -> Out {
    let store = &ports.schedules;
    match command {
        ScheduleCommand::List => {
            let all = store.schedules(t).await?;
            emit(ctx, &all, || {
                let mut out = format!(
                    "{:<24} {:<16} {:<28} {:<28} {}",
                    "SCHEDULE", "QUEUE", "TIMING", "NEXT", "STATE"
                );
                for s in &all {
                    let timing = match &s.spec.timing {
                        Timing::Cron { expr, tz } => format!("{expr} ({tz})"),
                        Timing::Every { every_ms } => format!("every {every_ms} ms"),
                    };
                    out.push_str(&format!(
                        "\n{:<24} {:<16} {:<28} {:<28} {}",
                        s.spec.name,
                        s.spec.queue,
                        timing,
                        s.next_at,
                        if s.paused { "paused" } else { "running" }
                    ));
                }
                out
            });
        }
        ScheduleCommand::Add {
            name,
            queue,
            cron,
            tz,
            every_ms,
            payload,
            catch_up,
        } => {
            let timing = match (cron, every_ms) {
                (Some(expr), _) => Timing::Cron { expr, tz },
                (None, Some(every_ms)) => Timing::Every { every_ms },
                (None, None) => {
                    return Err(Failure::Invalid(
                        "a schedule needs --cron EXPR or --every-ms N".into(),
                    ))
                }
            };
            let payload: Value = serde_json::from_str(&payload)
                .map_err(|e| Failure::Invalid(format!("--payload is not JSON: {e}")))?;
            let catch_up = match catch_up.as_str() {
                "skip" => CatchUp::Skip,
                "run-one" => CatchUp::RunOne,
                other => {
                    return Err(Failure::Invalid(format!(
                        "--catch-up is skip or run-one, not {other:?}"
                    )))
                }
            };
            let stored = store
                .put_schedule(
                    t,
                    NewSchedule {
                        name: ScheduleName::new(name)?,
                        queue: QueueName::new(queue)?,
                        timing,
                        job: NewJob::new(payload),
                        catch_up,
                    },
                )
                .await?;
            emit(ctx, &stored, || {
                format!(
                    "schedule {} stored; next tick {}{}",
                    stored.spec.name,
                    stored.next_at,
                    if stored.paused { " (paused)" } else { "" }
                )
            });
        }
        ScheduleCommand::Pause { name } => {
            let name = ScheduleName::new(name)?;
            store.set_schedule_paused(t, &name, true).await?;
            emit(ctx, &json!({"paused": name}), || {
                format!("paused schedule {name}")
            });
        }
        ScheduleCommand::Resume { name } => {
            let name = ScheduleName::new(name)?;
            store.set_schedule_paused(t, &name, false).await?;
            emit(ctx, &json!({"resumed": name}), || {
                format!("resumed schedule {name}")
            });
        }
        ScheduleCommand::Remove { name } => {
            let name = ScheduleName::new(name)?;
            store.delete_schedule(t, &name).await?;
            emit(ctx, &json!({"removed": name}), || {
                format!("removed schedule {name}")
            });
        }
    }
    Ok(())
}

/// Jobs as `flowstore queue jobs` and `history` print them.
fn jobs_table(found: &[JobInfo]) -> String {
    let mut out = format!(
        "{:<34} {:<10} {:<9} {:<28} {}",
        "JOB", "STATE", "ATTEMPTS", "FINISHED", "LAST ERROR"
    );
    for j in found {
        out.push_str(&format!(
            "\n{:<34} {:<10} {:<9} {:<28} {}",
            j.job_id,
            j.status,
            j.attempts,
            j.finished_at.map(|t| t.to_string()).unwrap_or_default(),
            j.last_error.as_deref().unwrap_or("")
        ));
    }
    out
}

/// A job as `flowstore queue job` prints it.
fn job_text(j: &JobInfo) -> String {
    let mut out = format!(
        "job {} in {}: {}\nattempts {} of {}, enqueued {}",
        j.job_id, j.queue, j.status, j.attempts, j.max_attempts, j.enqueued_at
    );
    if let Some(at) = j.finished_at {
        out.push_str(&format!(", finished {at}"));
    }
    if j.cancel_requested {
        out.push_str("\ncancel requested");
    }
    for (what, v) in [("progress", &j.progress), ("output", &j.output)] {
        if let Some(v) = v {
            out.push_str(&format!("\n{what} {v}"));
        }
    }
    if let Some(e) = &j.last_error {
        out.push_str(&format!("\nlast error {e}"));
    }
    out
}

/// `flowstore stats`.
pub async fn stats(storage: &Storage, ctx: &Ctx) -> Out {
    let s = storage.ports().operations.stats(&ctx.tenant()?).await?;
    emit(ctx, &s, || {
        format!(
            "workflows {} ({} versions)\nruns {} ({} events)\nmetric records {}, patterns {}\njobs {}\ndocuments {}",
            s.workflows, s.workflow_versions, s.runs, s.run_events, s.metric_records, s.patterns, s.jobs, s.documents
        )
    });
    Ok(())
}

/// `flowstore metrics summary <workflow> [--version N]` and
/// `flowstore metrics series <workflow> <name> [--hours H] [--bucket-minutes M]`.
pub async fn metrics(storage: &Storage, ctx: &Ctx, command: MetricsCommand) -> Out {
    let t = ctx.tenant()?;
    let ports = storage.ports();
    match command {
        MetricsCommand::Baseline {
            name,
            branch,
            last,
            value,
        } => {
            let last = usize::try_from(last).unwrap_or(usize::MAX);
            return crate::builds::baseline(storage, ctx, &name, &branch, last, value).await;
        }
        MetricsCommand::Builds { branch, name } => {
            return crate::builds::builds(storage, ctx, &branch, name.as_deref()).await;
        }
        MetricsCommand::Record { .. } => {
            return Err(Failure::Other(
                "metrics record is run by the dispatcher".into(),
            ));
        }
        MetricsCommand::Summary { workflow, version } => {
            let wf = WorkflowId::new(workflow)?;
            let s = ports.metrics.summary(&t, &wf, version).await?;
            emit(ctx, &s, || {
                let mut out = format!(
                    "runs {} (succeeded {}, failed {}, cancelled {}), success rate {:.1}%",
                    s.runs,
                    s.succeeded,
                    s.failed,
                    s.cancelled,
                    s.success_rate * 100.0
                );
                if let Some(d) = s.duration_ms {
                    out.push_str(&format!(
                        "\nduration ms: min {:.2}, p50 {:.2}, p95 {:.2}, p99 {:.2}, max {:.2}, mean {:.2}",
                        d.min, d.p50, d.p95, d.p99, d.max, d.mean
                    ));
                }
                if let Some(at) = s.last_run_at {
                    out.push_str(&format!("\nlast run {at}"));
                }
                out
            });
        }
        MetricsCommand::Series {
            workflow,
            name,
            hours,
            bucket_minutes,
        } => {
            // The parser bounds both (a year, a week), so neither product overflows.
            let to = Timestamp::now();
            let q = storage_ports::SeriesQuery {
                workflow_id: WorkflowId::new(workflow)?,
                name: storage_ports::MetricName::new(name)?,
                from: to.minus(std::time::Duration::from_secs(u64::from(hours) * 3600)),
                to,
                bucket: std::time::Duration::from_secs(u64::from(bucket_minutes) * 60),
            };
            let buckets = ports.metrics.series(&t, q).await?;
            emit(ctx, &buckets, || {
                let mut out = format!(
                    "{:<28} {:>7} {:>12} {:>12} {:>12}",
                    "BUCKET", "COUNT", "MEAN", "MIN", "MAX"
                );
                for b in &buckets {
                    #[allow(clippy::cast_precision_loss)]
                    let mean = b.sum / b.count.max(1) as f64;
                    out.push_str(&format!(
                        "\n{:<28} {:>7} {:>12.3} {:>12.3} {:>12.3}",
                        b.start, b.count, mean, b.min, b.max
                    ));
                }
                out
            });
        }
    }
    Ok(())
}

/// `flowstore health`: one line, exit 1 when a backend fails.
pub async fn health(storage: &Storage) -> Out {
    let h = storage.ports().operations.health().await;
    println!(
        "{}: {} ({})",
        h.backend,
        if h.ok { "ok" } else { "FAILING" },
        h.detail
    );
    if h.ok {
        Ok(())
    } else {
        Err(Failure::Other(format!("{} is failing", h.backend)))
    }
}
