//! Development tasks: `cargo xtask test` (the README's test command), `cargo xtask
//! services`, `cargo xtask deps`, `cargo xtask fuzz`.

mod fuzz;
mod services;

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::services::Services;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test      check the dependency rules, start throwaway PostgreSQL and Redis servers
            (installing Debian's packages when missing and running as root), run every
            test of the workspace against them, stop them
  services  start the same servers, print their environment variables, and keep them
            until Enter is pressed (for running single tests by hand)
  bench     build the benchmarks in release mode, start the servers, run every
            scenario beside its baseline and write target/bench/report.{md,json}
            (--quick: small sizes, under 3 minutes; --adapter sqlite,postgres,redis;
            --scenario P1,P3: only those scenarios; --queue-jobs N: P3 size)
  reliability
            build the long reliability runs in release mode, start fresh servers and run
            them (docs/reliability.md): `chaos` (R2: 100,000 jobs, workers killed with
            SIGKILL, a server restart; PostgreSQL, Redis, SQLite) and `backlog` (400,000
            jobs due or expired, 1,000,000 runs; PostgreSQL, Redis); both by default,
            or `reliability chaos redis` for one
  fuzz      build the fuzz targets of fuzz/ with cargo-fuzz (nightly, libFuzzer) and run
            each for --seconds N (600 by default), or only the targets named; prints
            executions and crashes per target (target/fuzz/report.md). Not part of test
  deps      check the dependency rules only (storage-ports has no I/O crates; adapters
            depend on no crate of ours but storage-ports)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => check_deps().and_then(|()| test(&args[1..])),
        Some("deps") => check_deps(),
        Some("services") => services(),
        Some("bench") => bench(&args[1..]),
        Some("reliability") => reliability(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Runs every test of the workspace against fresh servers. Extra arguments go to
/// `cargo test`. The servers stop when this returns, whatever the outcome.
fn test(extra: &[String]) -> Result<()> {
    // Build first, so that the servers do not idle through a cold compile.
    // The benchmarks (and their peers) stay out of the test build: `cargo xtask bench`.
    run(cargo().args([
        "test",
        "--workspace",
        "--exclude",
        "flowstore-bench",
        "--all-targets",
        "--no-run",
    ]))?;
    let services = Services::start()?;
    let with_env = |cmd: &mut Command| {
        for (k, v) in services.env() {
            cmd.env(k, v);
        }
    };
    let mut tests = cargo();
    tests
        .args([
            "test",
            "--workspace",
            "--exclude",
            "flowstore-bench",
            "--all-targets",
            "--no-fail-fast",
        ])
        .args(extra);
    with_env(&mut tests);
    let mut docs = cargo();
    docs.args([
        "test",
        "--workspace",
        "--exclude",
        "flowstore-bench",
        "--doc",
    ]);
    with_env(&mut docs);
    // The examples must run, not only build: each asserts what it shows.
    let mut examples = cargo();
    examples.args([
        "run",
        "-q",
        "-p",
        "storage-wiring",
        "--example",
        "typed_entities",
    ]);
    run(&mut tests)
        .and_then(|()| run(&mut docs))
        .and_then(|()| run(&mut examples))
        .and_then(|()| services.check_redis_keys())
}

/// Builds the benchmarks in release mode, starts the servers, runs them.
fn bench(extra: &[String]) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "flowstore-bench"]))?;
    let services = Services::start_durable_servers()?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut cmd = Command::new(format!("{target}/release/flowstore-bench"));
    cmd.args(extra).args(["--out", &format!("{target}/bench")]);
    for (k, v) in services.env() {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// Builds the reliability runs in release mode, starts fresh servers, runs them:
/// `reliability [backlog|chaos] [backend]...`, chaos then backlog by default.
fn reliability(extra: &[String]) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "flowstore-reliability"]))?;
    let services = Services::start_servers()?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let exe = format!("{target}/release/flowstore-reliability");
    let runs: Vec<Vec<String>> = match extra.first().map(String::as_str) {
        Some("backlog" | "chaos") => vec![extra.to_vec()],
        Some(other) => bail!("unknown reliability run {other} (backlog or chaos)"),
        None => vec![vec!["chaos".into()], vec!["backlog".into()]],
    };
    for args in runs {
        let mut cmd = Command::new(&exe);
        cmd.args(&args);
        for (k, v) in services.env() {
            cmd.env(k, v);
        }
        run(&mut cmd)?;
    }
    Ok(())
}

/// Starts the servers and keeps them until Enter is pressed.
fn services() -> Result<()> {
    let services = Services::start()?;
    for (k, v) in services.env() {
        println!("export {k}='{v}'");
    }
    eprintln!("xtask: servers running; press Enter to stop them");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}

/// The normal (non-dev) dependencies of `package`, one name per line, all depths.
fn dependency_names(package: &str, depth: Option<u32>) -> Result<Vec<String>> {
    let mut cmd = cargo();
    cmd.args([
        "tree", "--quiet", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
    ]);
    if let Some(d) = depth {
        cmd.args(["--depth", &d.to_string()]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo tree for {package}"))?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

fn is_ours(name: &str) -> bool {
    name.starts_with("storage-") || name.starts_with("adapter-") || name == "flowstore-cli"
}

/// The layering rules of DEVELOPERS.md, checked on the real dependency graph.
fn check_deps() -> Result<()> {
    const IO: [&str; 6] = [
        "tokio",
        "sqlx",
        "redis",
        "mongodb",
        "keyring",
        "keyring-core",
    ];
    let ports = dependency_names("storage-ports", None)?;
    let bad: Vec<&String> = ports.iter().filter(|n| IO.contains(&n.as_str())).collect();
    if !bad.is_empty() {
        bail!("storage-ports must not depend on I/O crates, but depends on {bad:?}");
    }
    let adapters = [
        "adapter-memory",
        "adapter-fs",
        "adapter-sqlite",
        "adapter-postgres",
        "adapter-redis",
        "adapter-keyring",
    ];
    for a in adapters {
        let direct = dependency_names(a, Some(1))?;
        let ours: Vec<&String> = direct
            .iter()
            .skip(1)
            .filter(|n| is_ours(n) && n.as_str() != "storage-ports")
            .collect();
        if !ours.is_empty() {
            bail!(
                "{a} may depend on storage-ports alone among our crates, but depends on {ours:?}"
            );
        }
        if !direct.iter().any(|n| n == "storage-ports") {
            bail!("{a} does not depend on storage-ports");
        }
    }
    eprintln!("xtask: dependency rules hold (storage-ports: {} crates, none of {IO:?}; adapters: {adapters:?})", ports.len());
    Ok(())
}
