//! `cargo xtask fuzz [--seconds N] [TARGET...]`: builds the fuzz targets of `fuzz/`
//! with cargo-fuzz (libFuzzer, the nightly toolchain) and runs each for N seconds
//! (600 by default), one after another, then prints a table of executions and crashes
//! that docs/reliability.md takes its figures from. The corpus grows in
//! `target/fuzz/corpus/<target>`, seeded from `fuzz/seeds/<target>`; a crash leaves its
//! input in `fuzz/artifacts/<target>/`, and the task fails naming it. The fuzz runs stay
//! out of `cargo xtask test`; the regression tests they led to are in it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Every target of `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 6] = [
    "config",
    "workflow_file",
    "cursor",
    "ids",
    "archive_line",
    "payload",
];

struct Outcome {
    target: String,
    seconds: u64,
    executions: u64,
    corpus: usize,
    crashes: Vec<PathBuf>,
}

/// Parses `--seconds N` and target names.
fn plan(extra: &[String]) -> Result<(u64, Vec<String>)> {
    let (mut seconds, mut targets) = (600_u64, Vec::new());
    let mut args = extra.iter();
    while let Some(a) = args.next() {
        if a == "--seconds" {
            let n = args.next().context("--seconds needs a number")?;
            seconds = n
                .parse()
                .with_context(|| format!("--seconds {n}: not a number of seconds"))?;
        } else if TARGETS.contains(&a.as_str()) {
            targets.push(a.clone());
        } else {
            bail!("unknown fuzz target {a} (one of {})", TARGETS.join(", "));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok((seconds, targets))
}

fn ensure_tools() -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("the fuzz targets need the nightly toolchain: rustup toolchain install nightly");
    }
    let fuzz = Command::new("cargo").args(["fuzz", "--version"]).output();
    if !fuzz.is_ok_and(|o| o.status.success()) {
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// The number after `stat::<name>:` in libFuzzer's final statistics.
fn final_stat(log: &str, name: &str) -> Option<u64> {
    let key = format!("stat::{name}:");
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(&key)?.trim().parse().ok())
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn run_target(root: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let corpus = root.join("target/fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let seeds = root.join("fuzz/seeds").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    let before = files_in(&artifacts);
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root.join("fuzz"))
        .args(["+nightly", "fuzz", "run", "-O", target])
        .arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.args([
        "--",
        &format!("-max_total_time={seconds}"),
        "-print_final_stats=1",
        "-rss_limit_mb=4096",
        "-max_len=65536",
    ]);
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let out = cmd
        .output()
        .with_context(|| format!("starting cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let log_path = root.join("target/fuzz").join(format!("{target}.log"));
    std::fs::write(&log_path, log.as_bytes())
        .with_context(|| format!("writing {}", log_path.display()))?;
    let crashes: Vec<PathBuf> = files_in(&artifacts)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if !out.status.success() && crashes.is_empty() {
        bail!(
            "cargo fuzz run {target} failed without a crash input; see {}",
            log_path.display()
        );
    }
    Ok(Outcome {
        target: target.to_owned(),
        seconds,
        executions: final_stat(&log, "number_of_executed_units").unwrap_or(0),
        corpus: files_in(&corpus).len(),
        crashes,
    })
}

/// Runs the fuzz targets; see the module documentation.
pub fn fuzz(extra: &[String]) -> Result<()> {
    let (seconds, targets) = plan(extra)?;
    ensure_tools()?;
    let root = std::env::current_dir()?;
    crate::run(
        Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "build", "-O"]),
    )?;
    let mut outcomes = Vec::new();
    for t in &targets {
        outcomes.push(run_target(&root, t, seconds)?);
    }
    let mut table = String::from(
        "| target | seconds | executions | corpus | new crashes |\n|---|---:|---:|---:|---:|\n",
    );
    for o in &outcomes {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            o.target,
            o.seconds,
            o.executions,
            o.corpus,
            o.crashes.len()
        );
    }
    println!("{table}");
    let report = root.join("target/fuzz/report.md");
    std::fs::write(&report, &table).with_context(|| format!("writing {}", report.display()))?;
    let crashes: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.crashes.iter().map(|p| p.display().to_string()))
        .collect();
    if !crashes.is_empty() {
        bail!(
            "the fuzzers found crashes; reproduce each with `cargo +nightly fuzz run -O TARGET FILE` in fuzz/:\n  {}",
            crashes.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stats_and_arguments_are_read() {
        let log = "#1 INITED\nstat::number_of_executed_units: 12345\nstat::peak_rss_mb: 40\n";
        assert_eq!(final_stat(log, "number_of_executed_units"), Some(12345));
        assert_eq!(final_stat(log, "missing"), None);
        let (s, t) = plan(&["--seconds".into(), "5".into(), "ids".into()]).unwrap_or_default();
        assert_eq!((s, t), (5, vec!["ids".to_owned()]));
        assert!(plan(&["nope".into()]).is_err());
    }
}
