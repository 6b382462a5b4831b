//! `flowstore`: the operator's command.
//!
//! It runs on the configured storage (by default workflow files in
//! `./flowstore-data/<tenant>/workflows` and the rest in `./flowstore-data/flowstore.db`):
//! `flowstore demo` acts as a small workflow engine would and prints what the storage
//! did; `flowstore doctor` checks every backend. `flowstore --help` lists the rest.

mod builds;
mod cli;
mod commands;
mod credentials;
mod demo;
mod diff;
mod doctor;
mod prune;
mod transfer;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use storage_wiring::{Storage, StorageConfig};

use crate::cli::{Cli, Command, Global};
use crate::commands::{Ctx, Failure, Out};

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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Exit codes: 0 ok, 1 failure, 2 invalid input, 3 not found.
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let (label, result) = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (code, message) = match f {
                Failure::Invalid(m) => (2, m),
                Failure::NotFound(m) => (3, m),
                Failure::Other(m) => (1, m),
            };
            eprintln!("flowstore {label}: {message}");
            ExitCode::from(code)
        }
    }
}

/// The configuration: the file given, or the embedded default, then `FLOWSTORE_*`.
fn config(global: &Global) -> Result<StorageConfig, Failure> {
    let mut config = match &global.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::Invalid(format!(
                    "cannot read the configuration file {}: {e}",
                    path.display()
                ))
            })?;
            StorageConfig::from_yaml(&text)
                .map_err(|e| Failure::Invalid(format!("{}: {e}", path.display())))?
        }
        None => StorageConfig::default(),
    };
    config
        .apply_env(std::env::vars())
        .map_err(|e| Failure::Invalid(e.to_string()))?;
    if global.metrics {
        config.layers.metrics = true;
    }
    Ok(config)
}

/// Runs the command; returns its name for error lines, and the outcome.
fn run(cli: Cli) -> (&'static str, Out) {
    let label = label(&cli.command);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                label,
                Err(Failure::Other(format!("starting the async runtime: {e}"))),
            )
        }
    };
    let metrics = if cli.global.metrics {
        match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                return (
                    label,
                    Err(Failure::Other(format!(
                        "installing the metrics recorder: {e}"
                    ))),
                )
            }
        }
    } else {
        None
    };
    let result = rt.block_on(dispatch(cli, metrics.clone()));
    if let Some(handle) = metrics {
        eprint!("{}", handle.render());
    }
    (label, result)
}

fn label(c: &Command) -> &'static str {
    match c {
        Command::Demo(_) => "demo",
        Command::Workflow(_) => "workflow",
        Command::Runs(_) => "runs",
        Command::Queue(_) => "queue",
        Command::Metrics(_) => "metrics",
        Command::Credentials(_) => "credentials",
        Command::Prune(_) => "prune",
        Command::Transfer(_) => "transfer",
        Command::Backup { .. } => "backup",
        Command::Ui { .. } => "ui",
        Command::Restore { .. } => "restore",
        Command::Stats => "stats",
        Command::Health => "health",
        Command::Doctor => "doctor",
        Command::Completions { .. } => "completions",
    }
}

async fn open(config: &StorageConfig) -> Result<Storage, Failure> {
    Storage::build(config)
        .await
        .map_err(|e| Failure::Other(e.to_string()))
}

async fn dispatch(cli: Cli, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Out {
    let ctx = Ctx::new(&cli.global);
    let command = match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "flowstore", &mut std::io::stdout());
            return Ok(());
        }
        Command::Transfer(args) => return transfer::transfer(&ctx, args).await,
        // It opens the storage itself, again for each try (see `builds::record`).
        Command::Metrics(cli::MetricsCommand::Record {
            values,
            branch,
            commit,
            build,
            attempts,
        }) => {
            let build = builds::Build {
                values,
                branch,
                commit,
                build,
                attempts,
            };
            return builds::record(&config(&cli.global)?, &ctx, build).await;
        }
        other => other,
    };
    let storage = open(&config(&cli.global)?).await?;
    match command {
        Command::Demo(args) => demo::run(&storage, &ctx, &args).await,
        Command::Workflow(c) => commands::workflow(&storage, &ctx, c).await,
        Command::Runs(c) => commands::runs(&storage, &ctx, c).await,
        Command::Queue(c) => commands::queue(&storage, &ctx, c).await,
        Command::Metrics(c) => commands::metrics(&storage, &ctx, c).await,
        Command::Credentials(c) => credentials::credentials(&storage, &ctx, c).await,
        Command::Prune(args) => prune::prune(&storage, &ctx, args).await,
        Command::Stats => commands::stats(&storage, &ctx).await,
        Command::Doctor => doctor::doctor(&storage, &ctx).await,
        Command::Health => commands::health(&storage).await,
        Command::Backup { to } => prune::backup(&storage, &ctx, &to).await,
        Command::Ui {
            listen,
            allow_actions,
        } => {
            let figures = metrics.map(|h| flowstore_console::Figures::new(move || h.render()));
            return ui(storage, listen, allow_actions, figures).await;
        }
        Command::Restore { from } => prune::restore(&storage, &ctx, &from).await,
        Command::Completions { .. } | Command::Transfer(_) => Ok(()),
    }?;
    persist(&storage).await
}

/// `flowstore ui`: serves until interrupted. The console persists after each
/// action itself, so there is nothing to persist afterwards.
async fn ui(
    storage: Storage,
    listen: std::net::SocketAddr,
    allow_actions: bool,
    figures: Option<flowstore_console::Figures>,
) -> Out {
    let token = std::env::var("FLOWSTORE_UI_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(storage_ports::Secret::new);
    flowstore_console::check_binding(&listen, token.as_ref()).map_err(Failure::Invalid)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {listen}: {e}")))?;
    let shown = listener.local_addr().map_or(listen, |a| a);
    if token.is_some() {
        eprintln!("flowstore ui: http://{shown}/ (every request must send Authorization: Bearer <FLOWSTORE_UI_TOKEN>)");
    } else {
        eprintln!("flowstore ui: open http://{shown}/ in a browser on this machine");
    }
    if allow_actions {
        eprintln!(
            "flowstore ui: operator actions are on (requeue, cancel, pause, resume, delete a run)"
        );
    }
    let options = flowstore_console::ConsoleOptions {
        token,
        allow_actions,
        figures,
    };
    flowstore_console::Console::new(storage, options)
        .serve(listener)
        .await
        .map_err(|e| Failure::Other(format!("the console stopped: {e}")))
}

/// A command that succeeded persists before it exits: a database that lives in a
/// bucket is uploaded, over the version it downloaded, when the command changed it.
/// A command that failed persists nothing.
async fn persist(storage: &Storage) -> Out {
    match storage.persist().await {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(databases = n, "persisted to object storage");
            Ok(())
        }
        Err(e) if e.kind() == storage_ports::ErrorKind::PreconditionFailed => {
            Err(Failure::Other(format!(
                "{}; run the command again to redo it on the current database",
                e.message()
            )))
        }
        Err(e) => Err(Failure::Other(e.to_string())),
    }
}
