//! `flowstore-reliability`: the long runs of docs/reliability.md. Run it with
//! `cargo xtask reliability [backlog|chaos]`, which builds it in release mode and
//! starts the servers; it reads the servers from the same variables as the tests.
//!
//! - `backlog [postgres|redis]...`: a queue with 200,000 due jobs and 200,000 expired
//!   leases, and a tenant with 1,000,000 runs;
//! - `chaos [postgres|redis|sqlite]...`: R2, workers killed at random and one server
//!   restart;
//! - `worker ...`: one chaos worker process (started by `chaos`).

mod backend;
mod backlog;
mod chaos;
mod worker;

use std::process::ExitCode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("backlog") => backlog::run(&names(&args[1..], &["postgres", "redis"])).await,
        Some("chaos") => chaos::run(&names(&args[1..], &["postgres", "redis", "sqlite"])).await,
        Some("worker") => worker::run(&args[1..]).await,
        _ => Err(anyhow::anyhow!(
            "usage: flowstore-reliability backlog [postgres|redis]... | chaos [postgres|redis|sqlite]..."
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowstore-reliability: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The backends named on the command line, or all of `all`.
fn names(args: &[String], all: &[&str]) -> Vec<String> {
    if args.is_empty() {
        all.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.to_vec()
    }
}
