//! `flowstore`: the operator's command.
//!
//! Today it runs on the memory backend (the embedded file + SQLite default arrives with
//! adapter-fs and adapter-sqlite): `flowstore demo` acts as a small workflow engine
//! would and prints what the storage did; `flowstore health` checks the backend.

mod demo;

use std::process::ExitCode;

use anyhow::Context;
use storage_wiring::{Storage, StorageConfig};

const USAGE: &str = "usage: flowstore <command>

commands:
  demo [--runs N] [--workers N]   act as a small workflow engine and report what was stored
  health                          check every configured backend
  help                            show this text

configuration: every concern defaults to memory in this build; environment overrides
such as FLOWSTORE_RUNS__TYPE=memory are applied (see docs/configuration.md).";

/// Exit codes: 0 ok, 1 failure, 2 invalid input (usage).
fn main() -> ExitCode {
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
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let mut config = StorageConfig::memory();
    config
        .apply_env(std::env::vars())
        .context("reading FLOWSTORE_* environment overrides")?;
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
            let storage = Storage::build(&config)?;
            rt.block_on(demo::run(&storage, &opts))?;
            Ok(ExitCode::SUCCESS)
        }
        "health" => {
            let storage = Storage::build(&config)?;
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
