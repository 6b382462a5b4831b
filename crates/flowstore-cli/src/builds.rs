//! The seed unentropy's CI flow (issue 16): a build records named numbers (bundle
//! size, coverage) with its context (branch, commit, build id); a later build compares
//! a value with the branch's baseline, the median of its last N builds; the series is
//! printed. Any configured backend works; with `type: sqlite, path: s3://...` the
//! database lives in a bucket, and `record` redoes itself on a fresh download when
//! another CI job persisted first, so concurrent jobs lose no build.
//!
//! A build is a metrics record (workflow `ci.<branch>`, run `<build id>`), which gives
//! baselines and series, plus a document in `ci-builds` holding its context.

use std::collections::BTreeMap;

use serde_json::json;
use storage_ports::{
    CollectionName, DocumentFilter, DocumentId, MetricName, PageRequest, RunId, RunMetric,
    RunStatus, Timestamp, WorkflowId,
};
use storage_wiring::{Storage, StorageConfig};

use crate::commands::{emit, Ctx, Failure, Out};

const BUILDS: &str = "ci-builds";

/// `[A-Za-z0-9.-]` as they are, every other byte (`_` included) as `_XX`: an id that
/// is unambiguous for any branch or build name.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

fn branch_workflow(branch: &str) -> Result<WorkflowId, Failure> {
    Ok(WorkflowId::new(format!("ci.{}", encode(branch)))?)
}

fn parse_values(values: &[String]) -> Result<BTreeMap<MetricName, f64>, Failure> {
    let mut out = BTreeMap::new();
    for v in values {
        let (name, number) = v.split_once('=').ok_or_else(|| {
            Failure::Invalid(format!(
                "--value {v:?}: write NAME=NUMBER, e.g. bundle_bytes=123456"
            ))
        })?;
        let number: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| {
                Failure::Invalid(format!("--value {v:?}: {number:?} is not a finite number"))
            })?;
        out.insert(MetricName::new(name.trim())?, number);
    }
    Ok(out)
}

/// What `metrics record` is given.
#[derive(Debug, Clone)]
pub struct Build {
    /// `NAME=NUMBER` pairs.
    pub values: Vec<String>,
    /// The branch built.
    pub branch: String,
    /// The commit built.
    pub commit: String,
    /// The CI system's id of the build.
    pub build: String,
    /// How many times to run the record on a fresh download when another job
    /// persisted first.
    pub attempts: u32,
}

/// `flowstore metrics record`: opens the storage, records, persists; on a lost race
/// (a database in a bucket that another job persisted first) opens it again and
/// records again, up to `attempts` times.
pub async fn record(config: &StorageConfig, ctx: &Ctx, build: Build) -> Out {
    let values = parse_values(&build.values)?;
    if values.is_empty() {
        return Err(Failure::Invalid(
            "give at least one --value NAME=NUMBER".into(),
        ));
    }
    let wf = branch_workflow(&build.branch)?;
    let run = RunId::new(encode(&build.build))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let storage = Storage::build(config)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let recorded = record_once(&storage, ctx, &build, &wf, &run, &values).await?;
        match storage.persist().await {
            Ok(_) => {
                emit(
                    ctx,
                    &json!({"recorded": recorded, "attempts": attempt}),
                    || {
                        if recorded {
                            format!(
                                "recorded build {} of {} ({} values)",
                                build.build,
                                build.branch,
                                values.len()
                            )
                        } else {
                            format!(
                                "build {} was already recorded; nothing changed",
                                build.build
                            )
                        }
                    },
                );
                return Ok(());
            }
            Err(e)
                if e.kind() == storage_ports::ErrorKind::PreconditionFailed
                    && attempt < build.attempts =>
            {
                tracing::info!(
                    attempt,
                    "another job persisted first; recording again on a fresh download"
                );
                tokio::time::sleep(storage_wiring::remote_sqlite::lost_race_pause(attempt)).await;
            }
            Err(e) => return Err(Failure::Other(e.to_string())),
        }
    }
}

async fn record_once(
    storage: &Storage,
    ctx: &Ctx,
    build: &Build,
    wf: &WorkflowId,
    run: &RunId,
    values: &BTreeMap<MetricName, f64>,
) -> Result<bool, Failure> {
    let t = ctx.tenant()?;
    let ports = storage.ports();
    let now = Timestamp::now();
    let recorded = ports
        .metrics
        .record(
            &t,
            RunMetric {
                run_id: run.clone(),
                workflow_id: wf.clone(),
                version: 1,
                status: RunStatus::Succeeded,
                duration_ms: 0.0,
                finished_at: now,
                values: values.clone(),
            },
        )
        .await?;
    if recorded {
        let body = json!({
            "branch": build.branch,
            "commit": build.commit,
            "build": build.build,
            "recorded_at": now.to_string(),
            "values": values.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        });
        let c = CollectionName::new(BUILDS)?;
        ports
            .documents
            .create(&t, &c, Some(DocumentId::new(run.as_str())?), body)
            .await?;
    }
    Ok(recorded)
}

/// `flowstore metrics baseline`: the median of the branch's last `last` builds, and
/// with `value`, how a new value compares with it.
pub async fn baseline(
    storage: &Storage,
    ctx: &Ctx,
    name: &str,
    branch: &str,
    last: usize,
    value: Option<f64>,
) -> Out {
    let t = ctx.tenant()?;
    let name = MetricName::new(name)?;
    let b = storage
        .ports()
        .metrics
        .baseline(&t, &branch_workflow(branch)?, &name, last)
        .await?
        .ok_or_else(|| Failure::NotFound(format!("no build of {branch} recorded {name}")))?;
    let ratio = value.and_then(|v| b.ratio(v));
    emit(
        ctx,
        &json!({"samples": b.samples, "median": b.median, "mean": b.mean, "value": value, "ratio": ratio}),
        || {
            let mut text = format!(
                "{name} on {branch}: median {} of the last {} builds (mean {:.3})",
                b.median, b.samples, b.mean
            );
            if let (Some(v), Some(r)) = (value, ratio) {
                text.push_str(&format!("; {v} is {:+.1}% against it", (r - 1.0) * 100.0));
            }
            text
        },
    );
    Ok(())
}

/// `flowstore metrics builds`: the branch's builds, oldest first, with a value.
pub async fn builds(storage: &Storage, ctx: &Ctx, branch: &str, name: Option<&str>) -> Out {
    let t = ctx.tenant()?;
    let c = CollectionName::new(BUILDS)?;
    let filter = DocumentFilter::all().eq("branch", json!(branch));
    let mut docs = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let p = storage
            .ports()
            .documents
            .list(&t, &c, &filter, page.clone())
            .await?;
        docs.extend(p.items.into_iter().map(|d| d.body));
        match p.next {
            Some(cursor) => page = PageRequest::after(500, cursor),
            None => break,
        }
    }
    docs.sort_by(|a, b| a["recorded_at"].as_str().cmp(&b["recorded_at"].as_str()));
    emit(ctx, &json!(docs), || {
        docs.iter()
            .map(|d| {
                let shown = match name {
                    Some(n) => d["values"][n].to_string(),
                    None => d["values"].to_string(),
                };
                format!(
                    "{}  {}  {}  {shown}",
                    d["recorded_at"].as_str().unwrap_or("?"),
                    d["build"].as_str().unwrap_or("?"),
                    d["commit"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
