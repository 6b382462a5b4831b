//! The seed's CI flow end to end on a SQLite database in a bucket (issue 16): 8 CI
//! jobs at once, each a sequence of 25 `flowstore metrics record` processes against
//! the same database object, lose no build; `metrics baseline` and `metrics builds`
//! read them back.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use storage_contract::servers::server_env as need;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const JOBS: usize = 8;
const BUILDS: usize = 25;

fn flowstore(dir: &std::path::Path, args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(["--config", "ci.yaml"])
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(Stdio::null())
        .output()
}

fn json_of(out: &Output) -> Result<Value, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("command failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn eight_ci_jobs_record_two_hundred_builds_into_one_bucket_database() -> TestResult {
    let endpoint = need("FLOWSTORE_TEST_S3_ENDPOINT")?;
    let bucket = need("FLOWSTORE_TEST_S3_BUCKET")?;
    let run = storage_ports::RunId::generate();
    let dir = std::env::temp_dir().join(format!("flowstore-ci-{run}"));
    std::fs::create_dir_all(&dir)?;
    let object = format!("s3://{bucket}/ci/{run}/metrics.db");
    let sqlite = format!(
        "{{ type: sqlite, path: '{object}', endpoint: '{endpoint}', region: us-east-1, cache_dir: '{}' }}",
        dir.join("cache").display()
    );
    std::fs::write(
        dir.join("ci.yaml"),
        format!("workflows: {sqlite}\nruns: {sqlite}\nmetrics: {sqlite}\nqueue: {sqlite}\ndocuments: {sqlite}\ncredentials: {{ type: memory }}\n"),
    )?;

    let jobs: Vec<_> = (0..JOBS)
        .map(|j| {
            let dir = dir.clone();
            std::thread::spawn(move || -> Result<usize, String> {
                let mut ok = 0;
                for b in 0..BUILDS {
                    let id = format!("job{j}-build{b}");
                    let size = (100_000 + j * 1_000 + b).to_string();
                    let out = flowstore(
                        &dir,
                        &[
                            "metrics",
                            "record",
                            "--branch",
                            "main",
                            "--commit",
                            &format!("c{j}{b}"),
                            "--build-id",
                            &id,
                            "--value",
                            &format!("bundle_bytes={size}"),
                            "--value",
                            "coverage=81.5",
                            "--attempts",
                            "200",
                            "--json",
                        ],
                    )
                    .map_err(|e| e.to_string())?;
                    if !out.status.success() {
                        return Err(format!("{id}: {}", String::from_utf8_lossy(&out.stderr)));
                    }
                    ok += 1;
                }
                Ok(ok)
            })
        })
        .collect();
    let mut recorded = 0;
    for j in jobs {
        recorded += j.join().map_err(|_| "a CI job thread panicked")??;
    }
    assert_eq!(recorded, JOBS * BUILDS);

    let builds = json_of(&flowstore(
        &dir,
        &["metrics", "builds", "--branch", "main", "--json"],
    )?)?;
    let stored = builds
        .as_array()
        .ok_or("builds --json is not an array")?
        .len();
    assert_eq!(
        stored,
        JOBS * BUILDS,
        "{} of {} builds were lost",
        JOBS * BUILDS - stored,
        JOBS * BUILDS
    );

    let base = json_of(&flowstore(
        &dir,
        &[
            "metrics", "baseline", "coverage", "--branch", "main", "--last", "10", "--value", "85",
            "--json",
        ],
    )?)?;
    assert_eq!(base["samples"], 10);
    assert_eq!(base["median"], 81.5);
    let missing = flowstore(
        &dir,
        &["metrics", "baseline", "coverage", "--branch", "other"],
    )?;
    assert_eq!(
        missing.status.code(),
        Some(3),
        "a branch without builds is not found"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
