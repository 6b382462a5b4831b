//! `flowstore-bench`: every figure beside a baseline measured in the same run, written
//! to `report.json` and `report.md`. Run it with `cargo xtask bench [--quick]
//! [--adapter NAME]`, which builds it in release mode and starts the servers at
//! production durability (PostgreSQL with fsync and synchronous_commit on, Redis
//! with `appendfsync everysec`); SQLite runs at `synchronous=NORMAL`, and again at
//! `FULL` as the backend `sqlite-full` for the write-bound scenarios (P1, P3).
//!
//! Scenarios (docs/performance.md has the targets and the last full run):
//! - P1 run-log ingest, 8 writers, vs the raw driver doing the same inserts;
//! - P2 query p99 at a large vs a small number of stored runs;
//! - P3 queue throughput, 4 workers, vs apalis on the same server (and vs the raw
//!   driver on the same tables or keys);
//! - P4 metrics summary latency after many vs few recorded runs;
//! - P5 opening the embedded default, cold and warm, vs the raw open;
//! - P6 the fs run log's append at step 10,000 vs at step 10;
//! - P7 watch latency, append to receipt, vs a watcher polling every 50 ms;
//! - P-console the web console's pages and API, p95 at 1,000,000 runs vs at 1,000.

mod apalis_peer;
mod backends;
mod console;
mod fs_append;
mod ingest;
mod measure;
mod open;
mod query;
mod queue;
mod summary;
mod watch;

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::measure::Figure;

/// Sizes of one run of the benchmarks.
struct Sizes {
    rounds: usize,
    ingest_runs_per_writer: usize,
    queue_jobs: usize,
    query: (usize, usize),
    summary: (usize, usize),
    console: (usize, usize),
}

impl Sizes {
    fn quick() -> Self {
        Self {
            rounds: 3,
            ingest_runs_per_writer: 10,
            queue_jobs: 2_000,
            query: (2_000, 20_000),
            summary: (500, 5_000),
            console: (1_000, 20_000),
        }
    }

    fn full() -> Self {
        Self {
            rounds: 5,
            ingest_runs_per_writer: 50,
            queue_jobs: 50_000,
            query: (10_000, 1_000_000),
            summary: (1_000, 100_000),
            console: (1_000, 1_000_000),
        }
    }
}

fn report_md(
    figures: &[Figure],
    quick: bool,
    started: &str,
    settings: &[(String, String)],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(md, "# flowstore benchmarks\n");
    let _ = writeln!(
        md,
        "{} run, started {started}, {cores} cores. Each figure is a median over alternating rounds beside its baseline measured in the same run.\n",
        if quick { "Quick (`--quick`)" } else { "Full" }
    );
    let _ = writeln!(
        md,
        "Durability in force (read back from each backend at the start):\n"
    );
    for (backend, shown) in settings {
        let _ = writeln!(md, "- {backend}: {shown}");
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| scenario | backend | what | ours | baseline | ratio | target | met | sizes |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for f in figures {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} {} | {:.2} ({}) | {:.2} | {} | {} | {} |",
            f.scenario,
            f.backend,
            f.name,
            f.ours,
            f.unit,
            f.baseline,
            f.baseline_name,
            f.ratio,
            f.target,
            if f.met { "yes" } else { "no" },
            f.sizes
        );
    }
    md
}

/// The comma-separated values of every `flag VALUES` in `args`.
fn list_flag(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .flat_map(|w| w[1].split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = list_flag(&args, "--adapter");
    let scenarios: Vec<String> = list_flag(&args, "--scenario")
        .iter()
        .map(|s| s.to_uppercase())
        .collect();
    let wants = |s: &str| scenarios.is_empty() || scenarios.iter().any(|o| o == s);
    let out = args
        .windows(2)
        .find(|w| w[0] == "--out")
        .map_or_else(|| PathBuf::from("target/bench"), |w| PathBuf::from(&w[1]));
    let mut sizes = if quick { Sizes::quick() } else { Sizes::full() };
    if let Some(w) = args.windows(2).find(|w| w[0] == "--queue-jobs") {
        sizes.queue_jobs = w[1]
            .parse()
            .map_err(|e| anyhow::anyhow!("--queue-jobs {}: {e}", w[1]))?;
    }
    let started = storage_ports::Timestamp::now().to_string();
    let work = std::env::temp_dir().join(format!("flowstore-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let backends = backends::open(&work, &only).await?;
    let mut settings = Vec::new();
    for b in &backends {
        let shown = b.durability().await?;
        eprintln!("{}: {shown}", b.name());
        settings.push((b.name().to_owned(), shown));
    }
    // FULL is reported for the write-bound scenarios; the rest read.
    let reads = |b: &&std::sync::Arc<backends::Backend>| b.name() != "sqlite-full";
    let mut figures = Vec::new();
    let mut note = |f: Figure| {
        eprintln!(
            "{} {:<9} {:>10.2} {} vs {:>10.2}  ratio {:.2}  {}",
            f.scenario, f.backend, f.ours, f.unit, f.baseline, f.ratio, f.name
        );
        figures.push(f);
    };
    for b in backends.iter().filter(|_| wants("P1")) {
        for f in ingest::run(b.clone(), sizes.ingest_runs_per_writer, sizes.rounds).await? {
            note(f);
        }
    }
    // `--scenario P3-variants` runs the variants (each beside plain P3) alone.
    for b in backends
        .iter()
        .filter(|_| wants("P3") || wants("P3-VARIANTS"))
    {
        if wants("P3") {
            for f in queue::run(b.clone(), &work, sizes.queue_jobs, sizes.rounds).await? {
                note(f);
            }
        }
        for f in queue::variants(b.clone(), sizes.queue_jobs, sizes.rounds).await? {
            note(f);
        }
    }
    for b in backends
        .iter()
        .filter(reads)
        .filter(|b| b.name() != "redis" && wants("P2"))
    {
        note(query::run(b.clone(), sizes.query.0, sizes.query.1).await?);
    }
    for b in backends.iter().filter(reads).filter(|_| wants("P4")) {
        note(summary::run(b.clone(), sizes.summary.0, sizes.summary.1).await?);
    }
    for b in backends
        .iter()
        .filter(reads)
        .filter(|b| b.name() != "redis" && wants("P-CONSOLE"))
    {
        for f in console::run(b.clone(), sizes.console.0, sizes.console.1).await? {
            note(f);
        }
    }
    for b in backends.iter().filter(reads).filter(|_| wants("P7")) {
        note(watch::run(b.clone(), if quick { 50 } else { 200 }).await?);
    }
    if wants("P5") && (only.is_empty() || only.iter().any(|o| o == "sqlite")) {
        for f in open::run(&work, if quick { 5 } else { 15 }).await? {
            note(f);
        }
    }
    if wants("P6") && (only.is_empty() || only.iter().any(|o| o == "fs")) {
        note(fs_append::run(&work, sizes.rounds, if quick { 20 } else { 50 }).await?);
    }
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&figures)?,
    )?;
    std::fs::write(
        out.join("report.md"),
        report_md(&figures, quick, &started, &settings),
    )?;
    eprintln!(
        "wrote {} and {}",
        out.join("report.md").display(),
        out.join("report.json").display()
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
