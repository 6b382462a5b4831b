//! `flowstore prune` (E9 for operators) and `flowstore runs import`, its way back.
//!
//! Prune selects runs by age, by keep-newest-N per workflow, and keeps failed runs
//! longer if asked. `--dry-run` reports exactly what a real prune would delete (the
//! same selection code runs). `--archive DIR` writes the selected runs as gzip-compressed
//! JSON lines and makes the file durable before the first delete.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;
use storage_ports::rules::retention::{RetentionPolicy, RunArchive};
use storage_ports::{CompleteRun, Error, Timestamp};
use storage_wiring::Storage;

use crate::cli::PruneArgs;
use crate::commands::{emit, Ctx, Failure, Out};

const DAY: u64 = 24 * 3600;

/// An archive file: gzip-compressed JSON lines, one whole run per line.
struct GzipArchive {
    path: PathBuf,
    out: Option<GzEncoder<File>>,
    written: usize,
}

impl GzipArchive {
    fn create(dir: &Path, tenant: &str) -> Result<Self, Failure> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        let stamp = Timestamp::now().as_micros();
        let path = dir.join(format!("runs-{tenant}-{stamp}.jsonl.gz"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Failure::Invalid(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self {
            path,
            out: Some(GzEncoder::new(file, Compression::default())),
            written: 0,
        })
    }
}

impl RunArchive for GzipArchive {
    fn write(&mut self, run: &CompleteRun) -> storage_ports::Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::backend("the archive is already committed"))?;
        let io = |e: std::io::Error| Error::backend(format!("archive write failed: {e}"));
        serde_json::to_writer(&mut *out, run)
            .map_err(|e| Error::backend(format!("archive write failed: {e}")))?;
        out.write_all(b"\n").map_err(io)?;
        self.written += 1;
        Ok(())
    }

    fn commit(&mut self) -> storage_ports::Result<()> {
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::backend("the archive is already committed"))?;
        let file = out
            .finish()
            .map_err(|e| Error::backend(format!("archive finish failed: {e}")))?;
        file.sync_all()
            .map_err(|e| Error::backend(format!("archive sync failed: {e}")))?;
        // The file's entry in its directory too: the runs are deleted once this
        // returns, so the archive must survive a crash right after.
        // (And the directory's own entry, which `create` may have just made.)
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let above = dir.parent().filter(|p| !p.as_os_str().is_empty());
        for d in std::iter::once(dir).chain(above) {
            File::open(d).and_then(|f| f.sync_all()).map_err(|e| {
                Error::backend(format!(
                    "archive directory sync failed ({}): {e}",
                    d.display()
                ))
            })?;
        }
        Ok(())
    }
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
        Some(dir) if !dry_run => Some(GzipArchive::create(dir, t.as_str())?),
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
    let path = archive.as_ref().map(|a| a.path.display().to_string());
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

/// `flowstore runs import FILE`: whole runs from JSON lines (`.gz` or plain), as a
/// prune archive holds them. Runs already present are skipped, so it can be rerun.
pub async fn import(storage: &Storage, ctx: &Ctx, file: &Path) -> Out {
    let t = ctx.tenant()?;
    let path = file.display();
    let is_gz = file.extension().is_some_and(|e| e == "gz");
    let file =
        File::open(file).map_err(|e| Failure::Invalid(format!("cannot open {path}: {e}")))?;
    let reader: Box<dyn Read> = if is_gz {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
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
                .store_complete_batch(&t, std::mem::take(&mut batch))
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
    emit(
        ctx,
        &json!({"stored": stored, "already_present": present}),
        || format!("imported {stored} runs ({present} already present)"),
    );
    Ok(())
}
