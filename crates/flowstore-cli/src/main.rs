//! `flowstore`: the operator's command.
//!
//! It runs on the configured storage (by default workflow files in
//! `./flowstore-data/<tenant>/workflows`, the rest in memory until adapter-sqlite lands):
//! `flowstore demo` acts as a small workflow engine would and prints what the storage
//! did; `flowstore health` checks every backend.

mod args;
mod commands;
mod credentials;
mod demo;
mod doctor;
mod migrate;
mod prune;

use std::process::ExitCode;

use anyhow::Context;
use storage_wiring::{Storage, StorageConfig};

const USAGE: &str = "usage: flowstore [--config FILE] <command>

commands:
  demo [--runs N] [--workers N]   act as a small workflow engine and report what was stored
  workflow put <id> [--file F|-] [--parent N] [--version N] [--author A]
  workflow get <id> [--version N] | versions <id> | lineage <id> [--version N]
  workflow list | delete <id> --version N
  runs query [--workflow W] [--version N] [--status failed,...] [--since-hours H] [--limit N]
  runs show <run> | events <run> [--from SEQ] | delete <run> | import <file[.gz]>
  prune [--older-than-days D] [--keep-newest N] [--keep-failed-days D] [--dry-run]
        [--archive DIR]            delete old runs (archived first as .jsonl.gz with --archive)
  queue stats <queue> | dead <queue> [--limit N] | requeue <queue> <job>
  metrics summary <workflow> [--version N]
  metrics series <workflow> <name> [--hours H] [--bucket-minutes M]
  credentials set <key>           value from standard input, or typed at a hidden prompt
  credentials get <key> [--reveal] | list | delete <key>
  migrate --from A.yaml --to B.yaml [--tenants a,b]
                                  copy every concern to other backends, verify digests
  stats                           what the tenant holds, per concern
  health                          check every configured backend (one line)
  doctor                          check every backend in detail: reachable, schema, what it
                                  keeps and holds, what is wrong and how to fix it
  help                            show this text

options: --tenant T (default: default), --json for scripts; FLOWSTORE_LOG=debug|trace for
diagnostics on standard error.
exit codes: 0 ok, 1 failure, 2 invalid input, 3 not found.

configuration: --config FILE (YAML), else FLOWSTORE_CONFIG, else the embedded default
(workflows as files in ./flowstore-data/<tenant>/workflows, runs, metrics, the queue and
documents in ./flowstore-data/flowstore.db, credentials in the OS keyring);
FLOWSTORE_<CONCERN>__TYPE|URL|PATH|STORE override it (see docs/configuration.md).";

/// Diagnostics on standard error at the level `FLOWSTORE_LOG` names (error, warn,
/// info, debug, trace, off; default warn). Adapters log ids, sizes and paths, never a
/// payload or a secret value (the leak test checks this at `trace`).
fn init_logging() {
    let level = match std::env::var("FLOWSTORE_LOG").as_deref() {
        Ok("off") => return,
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

/// Exit codes: 0 ok, 1 failure, 2 invalid input (usage).
fn main() -> ExitCode {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowstore: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let (config_file, args) = match args {
        [flag, file, rest @ ..] if flag == "--config" => (Some(file.clone()), rest),
        _ => (std::env::var("FLOWSTORE_CONFIG").ok(), args),
    };
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let mut config = match &config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the configuration file {path}"))?;
            match StorageConfig::from_yaml(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("flowstore: {path}: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => StorageConfig::default(),
    };
    if let Err(e) = config.apply_env(std::env::vars()) {
        eprintln!("flowstore: {e}");
        return Ok(ExitCode::from(2));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd.as_str() {
        "demo" => {
            let opts = match demo::Options::parse(&args[1..]) {
                Ok(o) => o,
                Err(msg) => {
                    eprintln!("flowstore demo: {msg}\n\n{USAGE}");
                    return Ok(ExitCode::from(2));
                }
            };
            let storage = rt.block_on(Storage::build(&config))?;
            rt.block_on(demo::run(&storage, &opts))?;
            Ok(ExitCode::SUCCESS)
        }
        "migrate" => {
            let r = rt.block_on(migrate::migrate(&args[1..]));
            Ok(match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(commands::Failure::Invalid(m)) => {
                    eprintln!("flowstore migrate: {m}");
                    ExitCode::from(2)
                }
                Err(commands::Failure::NotFound(m) | commands::Failure::Other(m)) => {
                    eprintln!("flowstore migrate: {m}");
                    ExitCode::FAILURE
                }
            })
        }
        "workflow" | "runs" | "queue" | "metrics" | "credentials" | "prune" | "doctor"
        | "stats" => {
            let storage = rt.block_on(Storage::build(&config))?;
            let rest = &args[1..];
            let r = rt.block_on(async {
                match cmd.as_str() {
                    "workflow" => commands::workflow(&storage, rest).await,
                    "runs" => commands::runs(&storage, rest).await,
                    "queue" => commands::queue(&storage, rest).await,
                    "metrics" => commands::metrics(&storage, rest).await,
                    "credentials" => credentials::credentials(&storage, rest).await,
                    "prune" => prune::prune(&storage, rest).await,
                    "doctor" => doctor::doctor(&storage, rest).await,
                    _ => commands::stats(&storage, rest).await,
                }
            });
            Ok(match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(commands::Failure::Invalid(m)) => {
                    eprintln!("flowstore {cmd}: {m}");
                    ExitCode::from(2)
                }
                Err(commands::Failure::NotFound(m)) => {
                    eprintln!("flowstore {cmd}: {m}");
                    ExitCode::from(3)
                }
                Err(commands::Failure::Other(m)) => {
                    eprintln!("flowstore {cmd}: {m}");
                    ExitCode::FAILURE
                }
            })
        }
        "health" => {
            let storage = rt.block_on(Storage::build(&config))?;
            let h = rt.block_on(storage.ports().operations.health());
            println!(
                "{}: {} ({})",
                h.backend,
                if h.ok { "ok" } else { "FAILING" },
                h.detail
            );
            Ok(if h.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("flowstore: unknown command {other:?}\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}
