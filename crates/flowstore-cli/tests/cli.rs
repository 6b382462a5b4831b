//! The `flowstore` binary on the embedded default in a temp directory: commands work,
//! `--json` is JSON, and exit codes tell not-found (3) and invalid input (2) from
//! success.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn flowstore(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes())?;
    }
    child.wait_with_output()
}

#[test]
fn workflow_commands_json_and_exit_codes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-cli-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;

    let put = flowstore(
        &dir,
        &["workflow", "put", "etl", "--author", "ana"],
        Some("nodes: [fetch, store]\n"),
    )?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert!(
        dir.join("flowstore-data/default/workflows/etl/v1.yaml")
            .exists(),
        "the definition is a file"
    );
    let put2 = flowstore(
        &dir,
        &["workflow", "put", "etl", "--parent", "1"],
        Some("{\"nodes\": [\"fetch\"]}"),
    )?;
    assert!(put2.status.success());

    let lineage = flowstore(&dir, &["workflow", "lineage", "etl", "--json"], None)?;
    let metas: serde_json::Value = serde_json::from_slice(&lineage.stdout)?;
    let versions: Vec<u64> = metas
        .as_array()
        .ok_or("not an array")?
        .iter()
        .filter_map(|m| m["version"].as_u64())
        .collect();
    assert_eq!(versions, vec![2, 1]);

    assert_eq!(
        flowstore(&dir, &["workflow", "get", "missing"], None)?
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        flowstore(&dir, &["workflow", "get", "../etc"], None)?
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        flowstore(&dir, &["workflow", "frobnicate"], None)?
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        flowstore(&dir, &["runs", "show", "nope"], None)?
            .status
            .code(),
        Some(3)
    );
    let summary = flowstore(&dir, &["metrics", "summary", "etl", "--json"], None)?;
    let summary: serde_json::Value = serde_json::from_slice(&summary.stdout)?;
    assert_eq!(
        summary["runs"], 0,
        "a workflow without runs has a summary of zeros"
    );
    let stats = flowstore(&dir, &["stats", "--json"], None)?;
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout)?;
    assert_eq!(stats["workflow_versions"], 2);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `flowstore doctor` says what is wrong in plain words and exits 1; with nothing
/// wrong it says so and exits 0.
#[test]
fn doctor_names_problems_and_fixes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-doctor-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("good.yaml"),
        "workflows: { type: fs, path: ./data }\nruns: { type: sqlite, path: ./data/f.db }\ncredentials: { type: memory }\n",
    )?;
    std::fs::write(
        dir.join("bad.yaml"),
        "workflows: { type: fs, path: ./data }\nqueue: { type: fs, path: ./data }\ncredentials: { type: memory }\n",
    )?;
    let good = flowstore(&dir, &["--config", "good.yaml", "doctor"], None)?;
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        text.contains("schema 8 (current)") && text.contains("no problems found"),
        "{text}"
    );
    assert!(
        text.contains("for tests only"),
        "memory must carry its caveat: {text}"
    );
    let bad = flowstore(&dir, &["--config", "bad.yaml", "doctor"], None)?;
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text.contains("queue is configured on fs, which does not keep queue"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `flowstore <command> [<subcommand>] --help` exits 0 with usage on standard output,
/// and a mistake is one error line plus a hint, not the whole usage.
#[test]
fn help_everywhere_and_short_errors() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir();
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["workflow", "--help"],
        vec!["workflow", "diff", "--help"],
        vec!["runs", "query", "--help"],
        vec!["queue", "requeue", "--help"],
        vec!["metrics", "series", "--help"],
        vec!["credentials", "set", "--help"],
        vec!["prune", "--help"],
        vec!["transfer", "--help"],
        vec!["doctor", "--help"],
        vec!["completions", "--help"],
    ] {
        let out = flowstore(&dir, &args, None)?;
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8(out.stdout)?.contains("Usage: flowstore"),
            "{args:?}"
        );
    }
    let out = flowstore(&dir, &["workflow", "frobnicate"], None)?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.starts_with("error: unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
    assert!(
        err.lines().count() <= 6,
        "the whole usage was printed: {err}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = flowstore(&dir, &["completions", shell], None)?;
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8(out.stdout)?.contains("flowstore"),
            "{shell}"
        );
    }
    Ok(())
}

/// After `flowstore demo`, every command it prints works as printed (with `--tenant`
/// before the command) and shows what the demo stored.
#[test]
fn the_demo_prints_commands_that_work() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-demo-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let demo = flowstore(&dir, &["demo", "--runs", "30", "--workers", "2"], None)?;
    assert_eq!(
        demo.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let report = String::from_utf8(demo.stdout)?;
    let commands: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("flowstore --tenant demo "))
        .collect();
    assert!(commands.len() >= 5, "{report}");
    for command in commands {
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        let out = flowstore(&dir, &words, None)?;
        let stdout = String::from_utf8(out.stdout)?;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.trim().is_empty(), "{command} printed nothing");
        if command.contains("workflow diff") {
            assert!(
                stdout.contains("-revision: 1") && stdout.contains("+revision: 3"),
                "{stdout}"
            );
            assert!(!stdout.contains('\x1b'), "colour in a pipe: {stdout:?}");
        }
        if command.contains("runs query") {
            assert!(stdout.contains("failed"), "{command}: {stdout}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Q11 from the CLI on the embedded default: `queue pause` is stored, so another
/// process (the next command) sees it in `queue stats`; `queue resume` lifts it.
#[test]
fn queue_pause_and_resume_persist_across_processes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-cli-pause-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let paused = |args: &[&str]| -> Result<bool, Box<dyn std::error::Error>> {
        let out = flowstore(&dir, args, None)?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stats = flowstore(&dir, &["queue", "stats", "emails", "--json"], None)?;
        let v: serde_json::Value = serde_json::from_slice(&stats.stdout)?;
        v["paused"]
            .as_bool()
            .ok_or_else(|| "stats has no paused flag".into())
    };
    assert!(paused(&["queue", "pause", "emails"])?);
    let text = flowstore(&dir, &["queue", "stats", "emails"], None)?;
    assert!(String::from_utf8_lossy(&text.stdout).contains("(paused)"));
    assert!(!paused(&["queue", "resume", "emails"])?);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `queue cancel`, `job`, `history` and `reenqueue` on jobs a host enqueued into the
/// same SQLite file.
#[tokio::test]
async fn queue_cancel_job_history_and_reenqueue() -> Result<(), Box<dyn std::error::Error>> {
    use storage_ports::{JobQueueExt as _, NewJob, QueueName, TenantId};
    let dir = std::env::temp_dir().join(format!(
        "flowstore-cli-history-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let yaml = format!(
        "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ndocuments: {{ type: memory }}\ncredentials: {{ type: memory }}\nqueue: {{ type: sqlite, path: {} }}\n",
        dir.join("q.db").display()
    );
    std::fs::write(dir.join("q.yaml"), &yaml)?;
    let (t, q) = (TenantId::new("default")?, QueueName::new("emails")?);
    let job = {
        let storage =
            storage_wiring::Storage::build(&storage_wiring::StorageConfig::from_yaml(&yaml)?)
                .await?;
        storage
            .ports()
            .queue
            .enqueue(
                &t,
                &q,
                NewJob::new(serde_json::json!({"to": "ana"}))
                    .with_keep_for(std::time::Duration::from_secs(3600)),
            )
            .await?
            .job_id
    };
    let run = |args: &[&str]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let mut argv = vec!["--config", "q.yaml"];
        argv.extend_from_slice(args);
        argv.push("--json");
        let out = flowstore(&dir, &argv, None)?;
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let id = job.as_str();
    assert_eq!(run(&["queue", "job", "emails", id])?["status"], "pending");
    let pending = run(&["queue", "jobs", "emails", "--state", "pending"])?;
    assert_eq!(pending[0]["job_id"], id, "{pending}");
    assert_eq!(
        run(&["queue", "cancel", "emails", id])?["outcome"],
        "cancelled"
    );
    let history = run(&["queue", "history", "emails", "--state", "cancelled"])?;
    assert_eq!(history[0]["job_id"], id, "{history}");
    let again = run(&["queue", "reenqueue", "emails", id])?;
    assert_ne!(again["job"], id);
    let stats = run(&["queue", "stats", "emails"])?;
    assert_eq!(stats["pending"], 1, "{stats}");
    assert_eq!(stats["running_by_key"], serde_json::json!({}), "{stats}");
    let twice = flowstore(
        &dir,
        &["--config", "q.yaml", "queue", "cancel", "emails", id],
        None,
    )?;
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("already cancelled"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `queue schedules add|list|pause|resume|remove` on a SQLite file, across processes.
#[test]
fn queue_schedules_are_added_paused_and_removed() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-cli-schedules-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("q.yaml"),
        format!(
            "workflows: {{ type: memory }}\nruns: {{ type: memory }}\nmetrics: {{ type: memory }}\ndocuments: {{ type: memory }}\ncredentials: {{ type: memory }}\nqueue: {{ type: sqlite, path: {} }}\n",
            dir.join("q.db").display()
        ),
    )?;
    let run = |args: &[&str]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let mut argv = vec!["--config", "q.yaml", "queue", "schedules"];
        argv.extend_from_slice(args);
        argv.push("--json");
        let out = flowstore(&dir, &argv, None)?;
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let added = run(&[
        "add",
        "nightly",
        "--queue",
        "reports",
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Paris",
        "--payload",
        "{\"report\": \"sales\"}",
    ])?;
    assert_eq!(added["name"], "nightly", "{added}");
    run(&["pause", "nightly"])?;
    let listed = run(&["list"])?;
    assert_eq!(listed[0]["paused"], true, "{listed}");
    assert_eq!(listed[0]["timing"]["tz"], "Europe/Paris", "{listed}");
    run(&["resume", "nightly"])?;
    run(&["remove", "nightly"])?;
    assert_eq!(run(&["list"])?, serde_json::json!([]));
    let bad = flowstore(
        &dir,
        &[
            "--config",
            "q.yaml",
            "queue",
            "schedules",
            "add",
            "x",
            "--queue",
            "q",
            "--cron",
            "61 * * * *",
        ],
        None,
    )?;
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad expression is invalid input"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `flowstore ui` serves the console on loopback (the port it was given, 0 for any)
/// and says where; beyond loopback without FLOWSTORE_UI_TOKEN it refuses to start.
#[test]
fn ui_serves_on_loopback_and_refuses_other_addresses_without_a_token(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{BufRead, BufReader, Read};
    let dir =
        std::env::temp_dir().join(format!("flowstore-ui-{}", storage_ports::RunId::generate()));
    std::fs::create_dir_all(&dir)?;
    let refused = flowstore(&dir, &["ui", "--listen", "0.0.0.0:0"], None)?;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("FLOWSTORE_UI_TOKEN"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(["ui", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .ok_or_else(|| format!("no address in {line:?}"))?
        .to_owned();
    let mut s = std::net::TcpStream::connect(&addr)?;
    write!(
        s,
        "GET /runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut page = String::new();
    s.read_to_string(&mut page)?;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<h1>Runs</h1>"),
        "{page}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
