//! The operator subcommands: workflows, runs, queue, stats. Each prints a table for
//! people or, with `--json`, one JSON document for scripts.

use serde::Serialize;
use serde_json::{json, Value};
use storage_ports::{
    ErrorKind, NewWorkflowVersion, PageRequest, QueueName, RunId, RunQuery, RunStatus, TenantId,
    Timestamp, WorkflowId,
};
use storage_wiring::Storage;

use crate::args::Args;

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

pub(crate) fn emit<T: Serialize>(args: &Args, value: &T, table: impl FnOnce() -> String) {
    let text = if args.switch("--json") {
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

pub(crate) fn tenant(args: &Args) -> Result<TenantId, Failure> {
    Ok(TenantId::new(args.flag("--tenant").unwrap_or("default"))?)
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

/// `flowstore workflow put|get|versions|lineage|list|delete`.
pub async fn workflow(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let view = storage.tenant(tenant(&args)?);
    match args.arg(0, "put|get|versions|lineage|list|delete")? {
        "put" => {
            let id = WorkflowId::new(args.arg(1, "workflow")?)?;
            let mut new =
                NewWorkflowVersion::next(id, read_definition(args.flag("--file").unwrap_or("-"))?);
            new.version = args.number("--version")?;
            new.parent = args.number("--parent")?;
            new.author = args.flag("--author").map(str::to_owned);
            let v = view.put_workflow(new).await?;
            emit(&args, &v.meta, || {
                format!(
                    "stored {} version {} ({})",
                    v.meta.workflow_id, v.meta.version, v.meta.content_hash
                )
            });
        }
        "get" => {
            let id = WorkflowId::new(args.arg(1, "workflow")?)?;
            let v = match args.number::<u32>("--version")? {
                Some(n) => view.workflow(&id, n).await?,
                None => view.latest_workflow(&id).await?,
            };
            emit(&args, &v, || {
                serde_saphyr::to_string(&v).unwrap_or_default()
            });
        }
        "versions" | "lineage" => {
            let id = WorkflowId::new(args.arg(1, "workflow")?)?;
            let metas = if args.arg(0, "")? == "versions" {
                view.workflow_versions(&id).await?
            } else {
                let v = match args.number::<u32>("--version")? {
                    Some(n) => n,
                    None => view.latest_workflow(&id).await?.meta.version,
                };
                view.workflow_lineage(&id, v).await?
            };
            emit(&args, &metas, || {
                let mut t = format!(
                    "{:<8} {:<8} {:<28} {:<12} {}",
                    "VERSION", "PARENT", "CREATED", "AUTHOR", "HASH"
                );
                for m in &metas {
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
            });
        }
        "list" => {
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
            emit(&args, &all, || {
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
        "delete" => {
            let id = WorkflowId::new(args.arg(1, "workflow")?)?;
            let v: u32 = args
                .number("--version")?
                .ok_or_else(|| Failure::Invalid("delete needs --version N".into()))?;
            view.delete_workflow(&id, v).await?;
            emit(
                &args,
                &json!({"deleted": {"workflow": id, "version": v}}),
                || format!("deleted {id} version {v}"),
            );
        }
        other => {
            return Err(Failure::Invalid(format!(
                "unknown workflow subcommand {other:?}"
            )))
        }
    }
    Ok(())
}

/// `flowstore runs query|show|events|delete`.
pub async fn runs(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let view = storage.tenant(tenant(&args)?);
    match args.arg(0, "query|show|events|delete|import")? {
        "import" => return crate::prune::import(storage, &args).await,
        "query" => {
            let mut q = RunQuery {
                limit: args.number("--limit")?.unwrap_or(50),
                ..RunQuery::default()
            };
            q.workflow_id = args.flag("--workflow").map(WorkflowId::new).transpose()?;
            q.version = args.number("--version")?;
            if let Some(s) = args.flag("--status") {
                q.statuses = s
                    .split(',')
                    .map(RunStatus::parse)
                    .collect::<Result<_, _>>()?;
            }
            if let Some(h) = args.number::<u64>("--since-hours")? {
                q.started_from =
                    Some(Timestamp::now().minus(std::time::Duration::from_secs(h * 3600)));
            }
            let page = view.query_runs(q).await?;
            emit(&args, &page.items, || {
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
        "show" => {
            let r = view.complete_run(&RunId::new(args.arg(1, "run")?)?).await?;
            emit(&args, &r, || {
                serde_saphyr::to_string(&r).unwrap_or_default()
            });
        }
        "events" => {
            let events = view
                .run_events(
                    &RunId::new(args.arg(1, "run")?)?,
                    args.number("--from")?.unwrap_or(1),
                )
                .await?;
            emit(&args, &events, || {
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
        "delete" => {
            let id = RunId::new(args.arg(1, "run")?)?;
            view.delete_run(&id).await?;
            emit(&args, &json!({"deleted": id}), || {
                format!("deleted run {id}")
            });
        }
        other => {
            return Err(Failure::Invalid(format!(
                "unknown runs subcommand {other:?}"
            )))
        }
    }
    Ok(())
}

/// `flowstore queue stats|dead|requeue <queue>`.
pub async fn queue(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let t = tenant(&args)?;
    let q = QueueName::new(args.arg(1, "queue")?)?;
    let ports = storage.ports();
    match args.arg(0, "stats|dead|requeue")? {
        "stats" => {
            let s = ports.queue.stats(&t, &q).await?;
            emit(&args, &s, || {
                format!(
                    "pending {}  scheduled {}  running {}  dead {}",
                    s.pending, s.scheduled, s.running, s.dead
                )
            });
        }
        "dead" => {
            let dead = ports
                .queue
                .dead(&t, &q, args.number("--limit")?.unwrap_or(100))
                .await?;
            emit(&args, &dead, || {
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
        "requeue" => {
            let job = storage_ports::JobId::new(args.arg(2, "job")?)?;
            ports.queue.requeue(&t, &q, &job).await?;
            emit(&args, &json!({"requeued": job}), || {
                format!("requeued {job}")
            });
        }
        other => {
            return Err(Failure::Invalid(format!(
                "unknown queue subcommand {other:?}"
            )))
        }
    }
    Ok(())
}

/// `flowstore stats`.
pub async fn stats(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let s = storage.ports().operations.stats(&tenant(&args)?).await?;
    emit(&args, &s, || {
        format!(
            "workflows {} ({} versions)\nruns {} ({} events)\nmetric records {}, patterns {}\njobs {}\ndocuments {}",
            s.workflows, s.workflow_versions, s.runs, s.run_events, s.metric_records, s.patterns, s.jobs, s.documents
        )
    });
    Ok(())
}

/// `flowstore metrics summary <workflow> [--version N]` and
/// `flowstore metrics series <workflow> <name> [--hours H] [--bucket-minutes M]`.
pub async fn metrics(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let t = tenant(&args)?;
    let ports = storage.ports();
    let wf = WorkflowId::new(args.arg(1, "workflow")?)?;
    match args.arg(0, "summary|series")? {
        "summary" => {
            let s = ports
                .metrics
                .summary(&t, &wf, args.number("--version")?)
                .await?;
            emit(&args, &s, || {
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
        "series" => {
            let name = storage_ports::MetricName::new(args.arg(2, "name")?)?;
            let hours: u64 = args.number("--hours")?.unwrap_or(24);
            let bucket: u64 = args.number("--bucket-minutes")?.unwrap_or(60);
            let to = Timestamp::now();
            let q = storage_ports::SeriesQuery {
                workflow_id: wf,
                name,
                from: to.minus(std::time::Duration::from_secs(hours * 3600)),
                to,
                bucket: std::time::Duration::from_secs(bucket * 60),
            };
            let buckets = ports.metrics.series(&t, q).await?;
            emit(&args, &buckets, || {
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
        other => {
            return Err(Failure::Invalid(format!(
                "unknown metrics subcommand {other:?}"
            )))
        }
    }
    Ok(())
}
