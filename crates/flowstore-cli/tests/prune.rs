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
    let mut file = std::fs::File::create(dir.join("seed.jsonl"))?;
    for r in &runs {
        serde_json::to_writer(&mut file, r)?;
        file.write_all(b"\n")?;
    }
    drop(file);
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
