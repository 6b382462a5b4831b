//! E9 for operators: `flowstore prune --dry-run` reports exactly what the real prune then
//! deletes, the archive holds exactly those runs, and `flowstore runs import` brings
//! them back unchanged. On the embedded default in a temp directory.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use storage_ports::{CompleteRun, NewRun, Run, RunError, RunId, RunOutcome, Timestamp, WorkflowId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn flowstore(dir: &std::path::Path, args: &[&str]) -> std::io::Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take();
    child.wait_with_output()
}

fn json_of(out: &Output) -> Result<Value, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("command failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// 60 finished runs of two workflows, one per day going back 1..=60 days, every third
/// one failed.
fn old_runs() -> Result<Vec<CompleteRun>, storage_ports::Error> {
    let now = Timestamp::now().as_micros();
    (1..=60_i64)
        .map(|d| {
            let started = Timestamp::from_micros(now - d * 86_400_000_000);
            let mut run = Run::started(NewRun {
                run_id: RunId::new(format!("run-{d:02}"))?,
                workflow_id: WorkflowId::new(if d % 2 == 0 { "even" } else { "odd" })?,
                version: 1,
                inputs: json!({"day": d}),
                started_at: started,
            });
            let end = Timestamp::from_micros(started.as_micros() + 1_000_000);
            run.apply(if d % 3 == 0 {
                RunOutcome::failed(
                    RunError {
                        kind: "boom".into(),
                        message: format!("day {d}"),
                        node_id: None,
                        context: json!({}),
                    },
                    end,
                )
            } else {
                RunOutcome::succeeded(json!({"ok": d}), end)
            });
            Ok(CompleteRun {
                run,
                steps: Vec::new(),
            })
        })
        .collect()
}

/// Writes `runs` to `seed.jsonl` in `dir`, as `runs import` reads them.
fn write_seed(dir: &std::path::Path, runs: &[CompleteRun]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(dir.join("seed.jsonl"))?;
    for r in runs {
        serde_json::to_writer(&mut file, r)?;
        file.write_all(b"\n")?;
    }
    Ok(())
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn listed(dir: &std::path::Path) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let page = json_of(&flowstore(
        dir,
        &["runs", "query", "--limit", "500", "--json"],
    )?)?;
    Ok(page
        .as_array()
        .ok_or("runs query --json is not an array")?
        .iter()
        .filter_map(|r| r["run_id"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn dry_run_matches_the_real_prune_and_the_archive_imports_back() -> TestResult {
    let dir = std::env::temp_dir().join(format!("flowstore-prune-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let runs = old_runs()?;
    write_seed(&dir, &runs)?;
    let imported = json_of(&flowstore(
        &dir,
        &["runs", "import", "seed.jsonl", "--json"],
    )?)?;
    assert_eq!(imported["stored"], 60);
    let all = listed(&dir)?;
    assert_eq!(all.len(), 60);

    let policy = [
        "--older-than-days",
        "30",
        "--keep-failed-days",
        "45",
        "--keep-newest",
        "25",
    ];
    let mut dry_args = vec!["prune", "--dry-run", "--json"];
    dry_args.extend(policy);
    let dry = json_of(&flowstore(&dir, &dry_args)?)?;
    let would = ids(&dry["report"]["selected"]);
    assert!(
        !would.is_empty() && would.len() < 60,
        "the policy must select some runs: {would:?}"
    );
    assert_eq!(listed(&dir)?, all, "a dry run deleted something");
    // Failed runs younger than 45 days are protected; days 1..=25 are also the newest.
    for d in [3, 33, 39, 42] {
        assert!(
            !would.contains(&format!("run-{d:02}")),
            "run-{d:02} must be kept"
        );
    }
    assert!(would.contains("run-31") && would.contains("run-48"));

    let mut real_args = vec!["prune", "--archive", "archive", "--json"];
    real_args.extend(policy);
    let real = json_of(&flowstore(&dir, &real_args)?)?;
    assert_eq!(
        ids(&real["report"]["selected"]),
        would,
        "the real prune chose differently"
    );
    assert_eq!(real["report"]["deleted"].as_u64(), Some(would.len() as u64));
    let left = listed(&dir)?;
    assert_eq!(
        left,
        all.difference(&would).cloned().collect::<BTreeSet<_>>()
    );

    let archive = real["archive"].as_str().ok_or("no archive path")?;
    assert!(archive.ends_with(".jsonl.gz"));
    let back = json_of(&flowstore(&dir, &["runs", "import", archive, "--json"])?)?;
    assert_eq!(back["stored"].as_u64(), Some(would.len() as u64));
    assert_eq!(
        listed(&dir)?,
        all,
        "the archive did not bring every pruned run back"
    );
    for r in &runs {
        let shown = json_of(&flowstore(
            &dir,
            &["runs", "show", r.run.run_id.as_str(), "--json"],
        )?)?;
        let stored: CompleteRun = serde_json::from_value(shown)?;
        assert_eq!(
            &stored, r,
            "run {} changed on its way through the archive",
            r.run.run_id
        );
    }
    let again = json_of(&flowstore(&dir, &["runs", "import", archive, "--json"])?)?;
    assert_eq!(again["already_present"].as_u64(), Some(would.len() as u64));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The S3-compatible server `cargo xtask test` starts, as the `AWS_*` variables a
/// user would set.
/// Environment variables for a child process.
type Env = Vec<(&'static str, String)>;

fn s3_env() -> Result<(Env, String), String> {
    use storage_contract::servers::server_env as need;
    let env = vec![
        ("AWS_ENDPOINT_URL", need("FLOWSTORE_TEST_S3_ENDPOINT")?),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ];
    Ok((env, need("FLOWSTORE_TEST_S3_BUCKET")?))
}

fn flowstore_with(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&'static str, String)],
) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
}

/// `prune --archive s3://bucket/prefix/` writes the pruned runs as a new object
/// (read back before any delete), and `runs import s3://bucket/prefix/` restores them
/// unchanged, into another store as well.
#[test]
fn an_archive_in_a_bucket_restores_the_pruned_runs_unchanged() -> TestResult {
    let (env, bucket) = s3_env()?;
    let dir = std::env::temp_dir().join(format!("flowstore-prune-s3-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let runs = old_runs()?;
    write_seed(&dir, &runs)?;
    json_of(&flowstore(
        &dir,
        &["runs", "import", "seed.jsonl", "--json"],
    )?)?;
    // An archive that cannot be written stops the prune before any delete.
    let refused = flowstore_with(
        &dir,
        &[
            "prune",
            "--older-than-days",
            "30",
            "--archive",
            "s3://flowstore-no-such-bucket/x/",
        ],
        &env,
    )?;
    assert!(
        !refused.status.success(),
        "a prune without its archive succeeded"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("flowstore-no-such-bucket"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        listed(&dir)?.len(),
        60,
        "runs were deleted without their archive"
    );

    let prefix = format!("s3://{bucket}/prune-{}/", RunId::generate());
    let real = json_of(&flowstore_with(
        &dir,
        &[
            "prune",
            "--older-than-days",
            "30",
            "--archive",
            &prefix,
            "--json",
        ],
        &env,
    )?)?;
    let pruned = ids(&real["report"]["selected"]);
    // Runs started 30 days ago and earlier (days 30..=60).
    assert_eq!(pruned.len(), 31, "{pruned:?}");
    let n = pruned.len() as u64;
    assert_eq!(real["report"]["deleted"].as_u64(), Some(n));
    let archive = real["archive"].as_str().ok_or("no archive location")?;
    assert!(
        archive.starts_with(&prefix) && archive.ends_with(".jsonl.gz"),
        "{archive}"
    );
    assert_eq!(listed(&dir)?.len(), 29);

    // Into a fresh store, from the prefix.
    let fresh = dir.join("restored");
    std::fs::create_dir_all(&fresh)?;
    let back = json_of(&flowstore_with(
        &fresh,
        &["runs", "import", &prefix, "--json"],
        &env,
    )?)?;
    assert_eq!(back["stored"].as_u64(), Some(n));
    for r in runs
        .iter()
        .filter(|r| pruned.contains(r.run.run_id.as_str()))
    {
        let shown = json_of(&flowstore(
            &fresh,
            &["runs", "show", r.run.run_id.as_str(), "--json"],
        )?)?;
        let stored: CompleteRun = serde_json::from_value(shown)?;
        assert_eq!(
            &stored, r,
            "run {} changed on its way through the bucket",
            r.run.run_id
        );
    }
    // And into the pruned store from the object itself.
    let again = json_of(&flowstore_with(
        &dir,
        &["runs", "import", archive, "--json"],
        &env,
    )?)?;
    assert_eq!(again["stored"].as_u64(), Some(n));
    assert_eq!(listed(&dir)?.len(), 60);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A prune into a bucket killed (SIGKILL) while it deletes leaves a complete archive:
/// the archive object exists before the first delete, holds every selected run, and
/// the runs still stored plus the archived ones are all the runs there were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_killed_while_it_deletes_leaves_the_archive_complete() -> TestResult {
    const RUNS: i64 = 4000;
    let (env, bucket) = s3_env()?;
    let dir = std::env::temp_dir().join(format!("flowstore-prune-kill-{}", RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let now = Timestamp::now().as_micros();
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let started = Timestamp::from_micros(now - (2 + i % 50) * 86_400_000_000);
        let mut run = Run::started(NewRun {
            run_id: RunId::new(format!("k{i:05}"))?,
            workflow_id: WorkflowId::new("etl")?,
            version: 1,
            inputs: json!({"i": i}),
            started_at: started,
        });
        run.apply(RunOutcome::succeeded(json!(i), started));
        runs.push(CompleteRun {
            run,
            steps: Vec::new(),
        });
    }
    write_seed(&dir, &runs)?;
    json_of(&flowstore(
        &dir,
        &["runs", "import", "seed.jsonl", "--json"],
    )?)?;

    let prefix = format!("s3://{bucket}/prune-kill-{}/", RunId::generate());
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(["prune", "--older-than-days", "1", "--archive", &prefix])
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let config = storage_objects::ObjectStoreConfig {
        endpoint: Some(env[0].1.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some(storage_ports::Secret::new("testing".into())),
    };
    let objects = storage_objects::Bucket::open(&config, &bucket)?;
    let at = storage_objects::ObjectLocation::parse(&prefix)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let archive = loop {
        if let Some((o, _)) = objects.list(&at).await?.into_iter().next() {
            break o;
        }
        if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
            return Err("the prune wrote no archive".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    // Let the deletes begin, then kill it in the middle of them.
    while child.try_wait()?.is_none() && runs_held(&dir)? == RUNS as u64 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    child.wait()?;
    // Every run the prune selected (all of them) is in the archive, whatever the
    // kill left undeleted: into a fresh store from the archive alone.
    let left = runs_held(&dir)?;
    let fresh = dir.join("restored");
    std::fs::create_dir_all(&fresh)?;
    let back = json_of(&flowstore_with(
        &fresh,
        &["runs", "import", &archive.to_string(), "--json"],
        &env,
    )?)?;
    assert_eq!(
        back["stored"].as_u64(),
        Some(RUNS as u64),
        "the archive is not complete"
    );
    assert_eq!(runs_held(&fresh)?, RUNS as u64);
    eprintln!("killed with {left} of {RUNS} runs not yet deleted; the archive held all {RUNS}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// How many runs the store holds (`flowstore stats`).
fn runs_held(dir: &std::path::Path) -> Result<u64, Box<dyn std::error::Error>> {
    let stats = json_of(&flowstore(dir, &["stats", "--json"])?)?;
    stats["runs"]
        .as_u64()
        .ok_or_else(|| format!("stats --json has no runs count: {stats}").into())
}
