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
        text.contains("schema 5 (current)") && text.contains("no problems found"),
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
