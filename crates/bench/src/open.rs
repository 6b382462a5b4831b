//! P5, opening the embedded default (workflow files + one SQLite file, migrations
//! applied): cold (a new directory) and warm (an existing one), beside the raw driver
//! opening the same file.

use std::path::Path;
use std::time::Instant;

use adapter_fs::FsStore;
use adapter_sqlite::SqliteStore;

use crate::measure::{median, Figure};

async fn open_default(dir: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let _fs = FsStore::open(dir)?;
    let db = SqliteStore::open(dir.join("flowstore.db")).await?;
    let ms = started.elapsed().as_secs_f64() * 1_000.0;
    drop(db);
    Ok(ms)
}

async fn open_raw(dir: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.join("flowstore.db"))
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
        )
        .await?;
    let _: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
    let ms = started.elapsed().as_secs_f64() * 1_000.0;
    pool.close().await;
    Ok(ms)
}

/// P5: cold and warm opens against the raw open, `rounds` each, alternating.
pub async fn run(base: &Path, rounds: usize) -> anyhow::Result<Vec<Figure>> {
    let (mut cold, mut warm, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let dir = base.join(format!("open-{i}"));
        cold.push(open_default(&dir).await?);
        warm.push(open_default(&dir).await?);
        raw.push(open_raw(&dir).await?);
    }
    let (c, w, r) = (median(&cold), median(&warm), median(&raw));
    let fig = |name: &str, ours: f64| Figure {
        scenario: "P5",
        name: name.into(),
        backend: "fs+sqlite",
        unit: "ms",
        ours,
        baseline: r,
        baseline_name: "raw sqlx opening the same file and running SELECT 1".into(),
        ratio: ours / r.max(1e-9),
        target: "report (no target set)",
        met: true,
        sizes: format!("{rounds} opens each"),
    };
    Ok(vec![
        fig(
            "open the embedded default, cold (creates files, applies every migration)",
            c,
        ),
        fig("open the embedded default, warm (checks the schema)", w),
    ])
}
