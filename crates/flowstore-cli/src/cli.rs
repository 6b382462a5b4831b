//! The command line, declared with clap's derive: one enum per command group (the
//! shape of sqlx-cli's `opt.rs`). Global options are accepted before or after the
//! command; `--help` works on every command and subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// flowstore: the operator's command for a flowstore storage.
#[derive(Debug, Parser)]
#[command(
    name = "flowstore",
    version,
    about = "Inspect and operate a flowstore storage: workflows, runs, queue, metrics, credentials.",
    after_help = "Exit codes: 0 ok, 1 failure, 2 invalid input, 3 not found.\n\
Configuration: --config FILE (YAML), else FLOWSTORE_CONFIG, else the embedded default \
(workflow files in ./flowstore-data/<tenant>/workflows, the rest in \
./flowstore-data/flowstore.db, credentials in the OS keyring); FLOWSTORE_<CONCERN>__TYPE and \
FLOWSTORE_<CONCERN>__<SETTING> (URL, PATH, MAX_CONNECTIONS, ...) override it (docs/configuration.md). \
FLOWSTORE_LOG=debug|trace for diagnostics."
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted anywhere on the line.
#[derive(Debug, Args)]
pub struct Global {
    /// The tenant to act on [default: default; the demo's own is demo].
    #[arg(long, global = true, value_name = "T")]
    pub tenant: Option<String>,
    /// The configuration file (YAML).
    #[arg(long, global = true, value_name = "FILE", env = "FLOWSTORE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// After the command, print the port-call metrics it caused (Prometheus text
    /// format) on standard error; `ui` also serves them at `/metrics`.
    #[arg(long, global = true)]
    pub metrics: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Act as a small workflow engine and report what was stored.
    Demo(DemoArgs),
    /// Workflow definitions: put, get, versions, lineage, diff, list, delete.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Run logs: query, show, events, delete, import.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The job queue: stats, dead letters, requeue, pause and resume, cancel, history,
    /// schedules.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Metrics: summary and time series.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Credentials in the OS keyring: set (from standard input), get, list, delete.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Delete old runs (archived first as .jsonl.gz with --archive).
    Prune(PruneArgs),
    /// Copy every concern of some tenants to other backends, then verify counts and
    /// digests on both sides (moving data; schema migrations run when a store opens).
    Transfer(TransferArgs),
    /// Back up the tenant's whole store (every concern but credentials, which stay in
    /// the keyring) to a directory or `s3://bucket/prefix/`, with a manifest of counts
    /// and digests.
    Backup {
        /// A directory, or `s3://bucket/prefix/` (the object store from `AWS_*`).
        #[arg(long, value_name = "DIR|s3://bucket/prefix/")]
        to: String,
    },
    /// Load a backup (its directory or `s3://.../flowstore-backup-.../` prefix) into
    /// the configured backends, checking it against its manifest before and after.
    Restore {
        /// The backup's directory or prefix, as `flowstore backup` printed it.
        #[arg(long, value_name = "DIR|s3://...")]
        from: String,
    },
    /// Serve the web console over the configured storage (read-only). Beyond loopback
    /// it needs FLOWSTORE_UI_TOKEN, which every request must send as a bearer token.
    Ui {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Turn on operator actions: requeue a dead job, cancel a job, pause or
        /// resume a queue, delete a run (each form carries a CSRF token).
        #[arg(long)]
        allow_actions: bool,
    },
    /// What the tenant holds, per concern.
    Stats,
    /// Check every configured backend (one line).
    Health,
    /// Check every backend in detail: reachable, schema, what it keeps and holds, what
    /// is wrong and how to fix it.
    Doctor,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `flowstore demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Runs to execute.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: u32,
    /// Concurrent workers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub workers: u32,
}

/// `flowstore workflow ...`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Store a new version from a YAML or JSON file, or standard input.
    Put {
        /// The workflow id.
        id: String,
        /// The definition file; `-` for standard input.
        #[arg(long, default_value = "-")]
        file: String,
        /// The version this one derives from (lineage).
        #[arg(long)]
        parent: Option<u32>,
        /// An explicit version number (the next one when absent).
        #[arg(long)]
        version: Option<u32>,
        /// Who wrote it.
        #[arg(long)]
        author: Option<String>,
    },
    /// Print a version (the latest when --version is absent).
    Get {
        /// The workflow id.
        id: String,
        /// The version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// List the versions of a workflow.
    Versions {
        /// The workflow id.
        id: String,
    },
    /// The ancestry of a version (the latest when --version is absent).
    Lineage {
        /// The workflow id.
        id: String,
        /// The version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// A unified diff of two versions' definitions (coloured on a terminal).
    Diff {
        /// The workflow id.
        id: String,
        /// The old version.
        from: u32,
        /// The new version.
        to: u32,
    },
    /// Every workflow with its latest version.
    List,
    /// Delete one version.
    Delete {
        /// The workflow id.
        id: String,
        /// The version to delete.
        #[arg(long)]
        version: u32,
    },
}

/// `flowstore runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Find runs, newest first.
    Query {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this version (with --workflow).
        #[arg(long)]
        version: Option<u32>,
        /// Only these statuses, comma-separated (running, succeeded, failed, cancelled).
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// Only runs started in the last H hours.
        #[arg(long, value_name = "H")]
        since_hours: Option<u32>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// A run with its steps, snapshots and events.
    Show {
        /// The run id.
        run: String,
    },
    /// A run's events from a sequence number on.
    Events {
        /// The run id.
        run: String,
        /// The first sequence number.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Delete a run.
    Delete {
        /// The run id.
        run: String,
    },
    /// Store whole runs from JSON lines (.gz or plain), as a prune archive holds them:
    /// a file, an archive object (`s3://bucket/prefix/runs-....jsonl.gz`), or every
    /// archive under a prefix (`s3://bucket/prefix/`).
    Import {
        /// The file, object or prefix.
        file: PathBuf,
    },
}

/// `flowstore queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts per state.
    Stats {
        /// The queue.
        queue: String,
    },
    /// Dead letters, oldest death first.
    Dead {
        /// The queue.
        queue: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Make a dead job pending again.
    Requeue {
        /// The queue.
        queue: String,
        /// The job id.
        job: String,
    },
    /// Stop delivering a queue's jobs (every node sees it); leases out keep working.
    Pause {
        /// The queue.
        queue: String,
    },
    /// Deliver a paused queue's jobs again.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Cancel a job: a pending or scheduled one at once, a running one when its
    /// worker next reports.
    Cancel {
        /// The queue.
        queue: String,
        /// The job id.
        job: String,
    },
    /// One job: status, attempts, progress, output, last error.
    Job {
        /// The queue.
        queue: String,
        /// The job id.
        job: String,
    },
    /// Jobs of one status: pending (delivery order), scheduled (by run-at time),
    /// running (by lease expiry), completed, cancelled or dead (newest first).
    Jobs {
        /// The queue.
        queue: String,
        /// pending, scheduled, running, completed, cancelled or dead.
        #[arg(long)]
        state: String,
        /// At most this many (up to 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Finished jobs kept by `keep_for`, newest finish first.
    History {
        /// The queue.
        queue: String,
        /// Only jobs finished this way: completed, cancelled or dead.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Enqueue a finished job again, as a new job.
    Reenqueue {
        /// The queue.
        queue: String,
        /// The finished job's id.
        job: String,
    },
    /// Periodic jobs: list, add, pause, resume, remove.
    #[command(subcommand)]
    Schedules(ScheduleCommand),
}

/// `flowstore queue schedules ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Every schedule: timing, queue, next tick, paused.
    List,
    /// Add a schedule, or replace the one of that name.
    Add {
        /// The schedule's name.
        name: String,
        /// The queue its jobs go to.
        #[arg(long)]
        queue: String,
        /// A cron expression (5 fields, or 6 with seconds first).
        #[arg(
            long,
            conflicts_with = "every_ms",
            required_unless_present = "every_ms"
        )]
        cron: Option<String>,
        /// The cron expression's IANA time zone.
        #[arg(long, default_value = "UTC", requires = "cron")]
        tz: String,
        /// A fixed interval in milliseconds instead of a cron expression.
        #[arg(long)]
        every_ms: Option<u64>,
        /// The job payload (JSON).
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Past ticks: `skip` (the default: run the latest only if under a minute old)
        /// or `run-one` (run the latest once, however old).
        #[arg(long, default_value = "skip")]
        catch_up: String,
    },
    /// Stop a schedule ticking.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Start a paused schedule again.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Remove a schedule (the jobs it enqueued stay).
    Remove {
        /// The schedule's name.
        name: String,
    },
}

/// `flowstore metrics ...`.
#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Runs, success rate and duration percentiles of a workflow.
    Summary {
        /// The workflow id.
        workflow: String,
        /// Only this version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// A metric's values over time, in buckets.
    Series {
        /// The workflow id.
        workflow: String,
        /// The metric name.
        name: String,
        /// The hours to cover, up to a year.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8_784))]
        hours: u32,
        /// The bucket width in minutes, up to a week.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=10_080))]
        bucket_minutes: u32,
    },
    /// Record a CI build's numbers (bundle size, coverage) with its branch, commit and
    /// build id. On a database in a bucket, redone on a fresh download when another
    /// job persisted first.
    Record {
        /// A value, as NAME=NUMBER (repeat for more).
        #[arg(long = "value", value_name = "NAME=NUMBER", required = true)]
        values: Vec<String>,
        /// The branch built.
        #[arg(long)]
        branch: String,
        /// The commit built.
        #[arg(long)]
        commit: String,
        /// The CI system's id of the build (recording it again changes nothing).
        #[arg(long = "build-id")]
        build: String,
        /// How many times to try when other jobs persist first.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000))]
        attempts: u32,
    },
    /// The median of a value over a branch's last builds; with --value, how a new
    /// value compares with it.
    Baseline {
        /// The value's name.
        name: String,
        /// The branch.
        #[arg(long)]
        branch: String,
        /// How many of the latest builds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        last: u64,
        /// A new value to compare.
        #[arg(long)]
        value: Option<f64>,
    },
    /// A branch's builds, oldest first, with their values.
    Builds {
        /// The branch.
        #[arg(long)]
        branch: String,
        /// Show only this value.
        #[arg(long)]
        name: Option<String>,
    },
}

/// `flowstore credentials ...`.
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Store a value read from standard input, or typed at a hidden prompt.
    Set {
        /// The key.
        key: String,
        /// Refused: a value on the command line stays in shell history and `ps`.
        #[arg(hide = true)]
        value: Option<String>,
    },
    /// Say whether a key is set (print its value with --reveal).
    Get {
        /// The key.
        key: String,
        /// Print the value.
        #[arg(long)]
        reveal: bool,
    },
    /// The keys of the tenant.
    List,
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
}

/// `flowstore prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete runs started more than D days ago.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub older_than_days: Option<u32>,
    /// Keep the newest N runs of each workflow.
    #[arg(long, value_name = "N")]
    pub keep_newest: Option<usize>,
    /// Keep failed runs for D days.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub keep_failed_days: Option<u32>,
    /// Report what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the runs to a .jsonl.gz file in DIR, made durable before the first
    /// delete; or, for `s3://bucket/prefix/`, to a new object there, written with
    /// `If-None-Match: *` and read back (size and digest) before the first delete.
    /// The object store comes from the `AWS_*` variables.
    #[arg(long, value_name = "DIR|s3://bucket/prefix/")]
    pub archive: Option<PathBuf>,
}

/// `flowstore transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The source configuration (YAML).
    #[arg(long, value_name = "A.yaml")]
    pub from: PathBuf,
    /// The destination configuration (YAML).
    #[arg(long, value_name = "B.yaml")]
    pub to: PathBuf,
    /// Only these tenants, comma-separated (default: every tenant the source lists).
    #[arg(long, value_delimiter = ',')]
    pub tenants: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command path, e.g. `["workflow", "diff"]`.
    fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, &path, out);
        }
    }

    #[test]
    fn help_works_on_every_command_and_global_options_go_anywhere() {
        let mut all = Vec::new();
        paths(&Cli::command(), &[], &mut all);
        assert!(all.len() > 30, "{all:?}");
        for path in all {
            let mut argv = vec!["flowstore".to_owned()];
            argv.extend(path.iter().cloned());
            argv.push("--help".to_owned());
            match Cli::try_parse_from(&argv) {
                Err(e) => assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{argv:?}"),
                Ok(_) => panic!("{argv:?} did not show help"),
            }
        }
        for argv in [
            ["flowstore", "--tenant", "demo", "runs", "query"],
            ["flowstore", "runs", "--tenant", "demo", "query"],
            ["flowstore", "runs", "query", "--tenant", "demo"],
        ] {
            let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string());
            assert_eq!(
                cli.map(|c| c.global.tenant),
                Ok(Some("demo".to_owned())),
                "{argv:?}"
            );
        }
    }
}
