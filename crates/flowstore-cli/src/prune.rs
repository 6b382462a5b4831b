//! `flowstore prune` (E9 for operators) and `flowstore runs import`, its way back.
//!
//! Prune selects runs by age, by keep-newest-N per workflow, and keeps failed runs
//! longer if asked. `--dry-run` reports exactly what a real prune would delete (the
//! same selection code runs). `--archive DIR` writes the selected runs as gzip-compressed
//! JSON lines and makes the file durable before the first delete; `--archive
//! s3://bucket/prefix/` writes them as a new object there (`If-None-Match: *`, so no
//! archive is ever overwritten) and reads it back, size and digest, before the first
//! delete.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use flate2::read::GzDecoder;
use serde_json::json;
use storage_objects::{Bucket, ObjectLocation, ObjectStoreConfig};
use storage_ports::rules::retention::{RetentionPolicy, RunArchive};
use storage_ports::{CompleteRun, Timestamp};
use storage_wiring::archive::Archive;
use storage_wiring::Storage;

use crate::cli::PruneArgs;
use crate::commands::{emit, Ctx, Failure, Out};

const DAY: u64 = 24 * 3600;

/// The object store of the `AWS_*` variables, for `s3://` arguments.
fn object_store_config() -> ObjectStoreConfig {
    ObjectStoreConfig::from_env()
}

fn object_location(text: &str) -> Result<ObjectLocation, Failure> {
    ObjectLocation::parse(text).map_err(|e| Failure::Invalid(e.message().to_owned()))
}

/// Days as a duration (the parser bounds them to a century, so this cannot overflow).
fn days(d: Option<u32>) -> Option<Duration> {
    d.map(|d| Duration::from_secs(u64::from(d) * DAY))
}

/// `flowstore prune`.
pub async fn prune(storage: &Storage, ctx: &Ctx, args: PruneArgs) -> Out {
    let t = ctx.tenant()?;
    let policy = RetentionPolicy {
        max_age: days(args.older_than_days),
        keep_newest_per_workflow: args.keep_newest,
        keep_failed_for: days(args.keep_failed_days),
    };
    if policy.max_age.is_none() && policy.keep_newest_per_workflow.is_none() {
        return Err(Failure::Invalid(
            "nothing to prune by: give --older-than-days N, --keep-newest N, or both".into(),
        ));
    }
    let dry_run = args.dry_run;
    let mut archive = match &args.archive {
        Some(to) if !dry_run => Some(Archive::new(
            &to.display().to_string(),
            t.as_str(),
            &object_store_config(),
        )?),
        _ => None,
    };
    let report = storage
        .ports()
        .runs
        .prune(
            &t,
            &policy,
            Timestamp::now(),
            dry_run,
            archive.as_mut().map(|a| a as &mut (dyn RunArchive + Send)),
        )
        .await?;
    let path = archive.as_ref().map(Archive::location);
    emit(ctx, &json!({"report": report, "archive": path}), || {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let done = if dry_run {
            report.selected.len()
        } else {
            report.deleted
        };
        let mut text = format!("examined {} runs; {verb} {done}", report.examined);
        if let Some(p) = &path {
            text.push_str(&format!("; archived {} to {p}", report.archived));
        }
        if !report.kept_damaged.is_empty() {
            text.push_str(&format!(
                "; kept {} damaged runs that cannot be archived (`flowstore runs show ID` says why):",
                report.kept_damaged.len()
            ));
            for id in &report.kept_damaged {
                text.push_str(&format!("\n  {id}"));
            }
        }
        if dry_run {
            for id in &report.selected {
                text.push_str(&format!("\n  {id}"));
            }
        }
        text
    });
    Ok(())
}

/// `flowstore runs import FILE|s3://...`: whole runs from JSON lines (`.gz` or
/// plain), as a prune archive holds them; from a file, an archive object, or every
/// `.jsonl.gz` object under a prefix. Runs already present are skipped, so it can be
/// rerun.
pub async fn import(storage: &Storage, ctx: &Ctx, file: &Path) -> Out {
    let t = ctx.tenant()?;
    let (mut stored, mut present) = (0_u64, 0_u64);
    match file.to_str().filter(|f| ObjectLocation::is_object_url(f)) {
        Some(url) => {
            let at = object_location(url)?;
            let bucket = Bucket::open(&object_store_config(), at.bucket())?;
            let objects: Vec<ObjectLocation> = if at.key().ends_with('/') {
                bucket
                    .list(&at)
                    .await?
                    .into_iter()
                    .map(|(o, _)| o)
                    .filter(|o| o.key().ends_with(".jsonl.gz"))
                    .collect()
            } else {
                vec![at]
            };
            for o in objects {
                let object = bucket
                    .get(&o)
                    .await?
                    .ok_or_else(|| Failure::NotFound(format!("no object {o}")))?;
                let is_gz = o.key().ends_with(".gz");
                let reader: Box<dyn Read> = if is_gz {
                    Box::new(GzDecoder::new(std::io::Cursor::new(object.bytes)))
                } else {
                    Box::new(std::io::Cursor::new(object.bytes))
                };
                let (s, p) = import_lines(storage, &t, &o.to_string(), reader).await?;
                stored += s;
                present += p;
            }
        }
        None => {
            let path = file.display().to_string();
            let is_gz = file.extension().is_some_and(|e| e == "gz");
            let file = File::open(file)
                .map_err(|e| Failure::Invalid(format!("cannot open {path}: {e}")))?;
            let reader: Box<dyn Read> = if is_gz {
                Box::new(GzDecoder::new(file))
            } else {
                Box::new(file)
            };
            (stored, present) = import_lines(storage, &t, &path, reader).await?;
        }
    }
    emit(
        ctx,
        &json!({"stored": stored, "already_present": present}),
        || format!("imported {stored} runs ({present} already present)"),
    );
    Ok(())
}

/// Stores the runs of one archive's lines, 200 per batch; answers (stored, present).
async fn import_lines(
    storage: &Storage,
    t: &storage_ports::TenantId,
    path: &str,
    reader: Box<dyn Read>,
) -> Result<(u64, u64), Failure> {
    let (mut stored, mut present) = (0_u64, 0_u64);
    let mut batch = Vec::new();
    let mut lines = BufReader::new(reader).lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line = line.map_err(|e| Failure::Invalid(format!("{path}: line {}: {e}", n + 1)))?;
        if !line.trim().is_empty() {
            let run: CompleteRun = serde_json::from_str(&line).map_err(|e| {
                Failure::Invalid(format!("{path}: line {} is not a run: {e}", n + 1))
            })?;
            batch.push(run);
        }
        if batch.len() == 200 || (lines.peek().is_none() && !batch.is_empty()) {
            for r in storage
                .ports()
                .runs
                .store_complete_batch(t, std::mem::take(&mut batch))
                .await?
            {
                match r {
                    Ok(()) => stored += 1,
                    Err(e) if e.kind() == storage_ports::ErrorKind::AlreadyExists => present += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok((stored, present))
}

/// `flowstore backup --to DIR|s3://bucket/prefix/`.
pub async fn backup(storage: &Storage, ctx: &Ctx, to: &str) -> Out {
    let t = ctx.tenant()?;
    let report = storage_wiring::backup::backup(storage, &t, to, &object_store_config()).await?;
    emit(ctx, &json!(report), || {
        let mut text = format!("backed up tenant {t} to {}", report.location);
        for (name, d) in &report.manifest.concerns {
            text.push_str(&format!(
                "\n  {name}: {} records, sha256 {}",
                d.count, d.digest
            ));
        }
        text
    });
    Ok(())
}

/// `flowstore restore --from DIR|s3://.../`.
pub async fn restore(storage: &Storage, ctx: &Ctx, from: &str) -> Out {
    let report = storage_wiring::backup::restore(storage, from, &object_store_config()).await?;
    emit(ctx, &json!(report), || {
        let written: u64 = report.copied.written.values().sum();
        let present: u64 = report.copied.already_present.values().sum();
        let mut text = format!(
            "restored tenant {} from {from}: {written} records written, {present} already present; every count and digest matches the manifest",
            report.manifest.tenant
        );
        if !report.skipped.is_empty() {
            text.push_str(&format!(
                "; not kept by this configuration: {}",
                report.skipped.join(", ")
            ));
        }
        text
    });
    Ok(())
}
