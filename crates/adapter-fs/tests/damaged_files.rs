//! W10: a file damaged or edited by hand is reported and skipped by listings; reading
//! it explicitly is a corrupt-data error naming the file. Also: the files are YAML a
//! person can read, in private directories.

use adapter_fs::FsStore;
use serde_json::json;
use storage_ports::{ErrorKind, NewWorkflowVersion, PageRequest, TenantId, WorkflowId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn temp_root(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "flowstore-fs-{name}-{}",
        storage_ports::RunId::generate()
    ))
}

#[tokio::test]
async fn w10_damaged_files_are_reported_and_skipped() -> TestResult {
    let root = temp_root("w10");
    let store = FsStore::open(&root)?;
    let set = store.store_set();
    let t = TenantId::new("acme")?;
    let wf = WorkflowId::new("etl")?;
    for n in 1..=3 {
        set.workflows
            .put(
                &t,
                NewWorkflowVersion::next(wf.clone(), json!({"n": format!("marker-{n}")})),
            )
            .await?;
    }
    let dir = root.join("acme/workflows/etl");
    // v3: broken YAML. v2: edited by hand, so the hash no longer matches.
    std::fs::write(dir.join("v3.yaml"), "version: [unclosed\n")?;
    let v2 = std::fs::read_to_string(dir.join("v2.yaml"))?;
    std::fs::write(
        dir.join("v2.yaml"),
        v2.replace("marker-2", "edited by hand"),
    )?;

    let e = set
        .workflows
        .get(&t, &wf, 3)
        .await
        .err()
        .ok_or("damaged v3 was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(
        e.to_string().contains("v3.yaml"),
        "the error must name the file: {e}"
    );
    let e = set
        .workflows
        .get(&t, &wf, 2)
        .await
        .err()
        .ok_or("edited v2 was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(
        e.to_string().contains("hash"),
        "the error must say why: {e}"
    );

    let versions: Vec<u32> = set
        .workflows
        .versions(&t, &wf)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, vec![1]);
    assert_eq!(set.workflows.latest(&t, &wf).await?.meta.version, 1);
    let listed = set.workflows.list(&t, PageRequest::first(10)).await?;
    assert_eq!(
        listed.items.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1]
    );
    // Versions are still never reused: the next one is 4.
    assert_eq!(
        set.workflows
            .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 4})))
            .await?
            .meta
            .version,
        4
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

#[tokio::test]
async fn files_are_readable_yaml_in_private_directories() -> TestResult {
    let root = temp_root("yaml");
    let set = FsStore::open(&root)?.store_set();
    let t = TenantId::new("acme")?;
    let wf = WorkflowId::new("etl")?;
    set.workflows
        .put(
            &t,
            NewWorkflowVersion::next(wf, json!({"nodes": [{"id": "fetch"}]})).with_author("ana"),
        )
        .await?;
    let text = std::fs::read_to_string(root.join("acme/workflows/etl/v1.yaml"))?;
    for needle in [
        "version: 1",
        "author: ana",
        "content_hash: sha256:",
        "fetch",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("acme/workflows/etl"))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "workflow directories must be private");
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// W10 for run logs and metrics: a damaged run head is skipped by queries and reported
/// when read; a damaged step line is reported with its line number; a damaged metrics
/// aggregate is rebuilt from the records, so summaries stay right.
#[tokio::test]
async fn w10_damaged_run_and_metric_files_are_reported_or_repaired() -> TestResult {
    use storage_ports::{
        NewRun, RunId, RunMetric, RunQuery, RunStatus, RunStep, Timestamp, VariableSnapshot,
    };
    let root = temp_root("w10-runs");
    let set = FsStore::open(&root)?.store_set();
    let t = TenantId::new("acme")?;
    let wf = WorkflowId::new("etl")?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = RunId::new(format!("run-{i}"))?;
        set.runs
            .start(
                &t,
                NewRun {
                    run_id: id.clone(),
                    workflow_id: wf.clone(),
                    version: 1,
                    inputs: json!({"i": i}),
                    started_at: Timestamp::now(),
                },
            )
            .await?;
        set.runs
            .append(
                &t,
                &id,
                RunStep::Snapshot(VariableSnapshot {
                    name: "x".into(),
                    old_value: json!(null),
                    new_value: json!(i),
                    at: Timestamp::now(),
                }),
            )
            .await?;
        ids.push(id);
    }
    std::fs::write(root.join("acme/runs/run-0/run.json"), "{not json")?;
    std::fs::write(root.join("acme/runs/run-1/steps.jsonl"), "{\"type\":\n")?;

    let page = set
        .runs
        .query(
            &t,
            RunQuery {
                limit: 10,
                ..RunQuery::default()
            },
        )
        .await?;
    let listed: Vec<&str> = page.items.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(
        listed,
        ["run-2", "run-1"],
        "the damaged head must be skipped"
    );
    let e = set
        .runs
        .get(&t, &ids[0])
        .await
        .err()
        .ok_or("damaged head read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(e.to_string().contains("run.json"), "{e}");
    let e = set
        .runs
        .get_complete(&t, &ids[1])
        .await
        .err()
        .ok_or("damaged steps read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(
        e.to_string().contains("steps.jsonl") && e.to_string().contains("line 1"),
        "{e}"
    );

    for (i, id) in ids.iter().enumerate() {
        set.metrics
            .record(
                &t,
                RunMetric {
                    run_id: id.clone(),
                    workflow_id: wf.clone(),
                    version: 1,
                    status: RunStatus::Succeeded,
                    duration_ms: 10.0 * (i as f64 + 1.0),
                    finished_at: Timestamp::now(),
                    values: Default::default(),
                },
            )
            .await?;
    }
    std::fs::write(root.join("acme/metrics/etl/aggregate.json"), "garbage")?;
    let summary = set.metrics.summary(&t, &wf, None).await?;
    assert_eq!(
        summary.runs, 3,
        "the aggregate must be rebuilt from the records"
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// W5 on hand-edited files: a `parent:` edited to the file's own version (or a newer
/// one) would loop a lineage walk forever; it ends with a corrupt-data error naming
/// the file, on the store and on `flowstore workflow lineage` alike.
#[tokio::test]
async fn w5_a_parent_edited_into_a_loop_is_corrupt_data_naming_the_file() -> TestResult {
    let root = temp_root("w5-loop");
    let store = FsStore::open(&root)?;
    let set = store.store_set();
    let t = TenantId::new("acme")?;
    let wf = WorkflowId::new("etl")?;
    set.workflows
        .put(&t, NewWorkflowVersion::next(wf.clone(), json!({"n": 1})))
        .await?;
    set.workflows
        .put(
            &t,
            NewWorkflowVersion::next(wf.clone(), json!({"n": 2})).with_parent(1),
        )
        .await?;
    let path = root.join("acme/workflows/etl/v2.yaml");
    let text = std::fs::read_to_string(&path)?;
    assert!(text.contains("parent: 1"), "{text}");
    std::fs::write(&path, text.replace("parent: 1", "parent: 2"))?;
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        set.workflows.lineage(&t, &wf, 2),
    )
    .await
    .map_err(|_| "lineage of a looped file did not end")?
    .err()
    .ok_or("a looped lineage was read")?;
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert!(
        e.to_string().contains("v2.yaml"),
        "the error must name the file: {e}"
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// E2 on files whose position file (`steps.pos`) lags behind the log, as after a
/// crash, or is damaged or missing: the next append still gets the next sequence
/// number, read from the log.
#[tokio::test]
async fn e2_a_lagging_or_damaged_step_position_costs_a_read_not_a_wrong_number() -> TestResult {
    let root = temp_root("e2-pos");
    let store = FsStore::open(&root)?;
    let set = store.store_set();
    let t = TenantId::new("acme")?;
    let run = storage_ports::NewRun {
        run_id: storage_ports::RunId::new("r1")?,
        workflow_id: WorkflowId::new("etl")?,
        version: 1,
        inputs: json!({}),
        started_at: storage_ports::Timestamp::now(),
    };
    let rid = run.run_id.clone();
    set.runs.start(&t, run).await?;
    let step = |n: u32| {
        storage_ports::RunStep::Snapshot(storage_ports::VariableSnapshot {
            name: format!("v{n}"),
            old_value: json!(null),
            new_value: json!(n),
            at: storage_ports::Timestamp::now(),
        })
    };
    assert_eq!(set.runs.append(&t, &rid, step(1)).await?, 2);
    let pos = root.join("acme/runs/r1/steps.pos");
    let after_one = std::fs::read_to_string(&pos)?;
    assert_eq!(set.runs.append(&t, &rid, step(2)).await?, 3);
    assert_eq!(set.runs.append(&t, &rid, step(3)).await?, 4);
    // Lagging two steps behind.
    std::fs::write(&pos, &after_one)?;
    assert_eq!(set.runs.append(&t, &rid, step(4)).await?, 5);
    // Damaged, then missing.
    std::fs::write(&pos, "9 9 9\n")?;
    assert_eq!(set.runs.append(&t, &rid, step(5)).await?, 6);
    std::fs::remove_file(&pos)?;
    assert_eq!(set.runs.append(&t, &rid, step(6)).await?, 7);
    assert_eq!(set.runs.events(&t, &rid, 1).await?.len(), 7);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// Damages files the way a person editing them by hand might.
struct FileDamager(std::path::PathBuf);

impl FileDamager {
    fn overwrite(path: &std::path::Path, text: &str) -> Result<bool, String> {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
        std::fs::write(path, text).map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Rewrites a file through `change`.
    fn edit(
        path: &std::path::Path,
        change: impl FnOnce(String) -> Result<String, String>,
    ) -> Result<bool, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::overwrite(path, &change(text)?)
    }
}

#[async_trait::async_trait]
impl storage_contract::damage::Damager for FileDamager {
    async fn damage(
        &self,
        t: &TenantId,
        record: &storage_contract::damage::Record,
    ) -> Result<bool, String> {
        use storage_contract::damage::Record;
        let tenant = self.0.join(t.as_str());
        match record {
            Record::Run(r) => {
                Self::overwrite(&tenant.join(format!("runs/{r}/run.json")), "{not json")
            }
            Record::Event(r, seq) => {
                // Sequence 1 is the start; step line n is sequence n + 1.
                let n = usize::try_from(*seq).map_err(|e| e.to_string())? - 1;
                Self::edit(&tenant.join(format!("runs/{r}/steps.jsonl")), |text| {
                    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                    let line = lines.get_mut(n - 1).ok_or("no such line")?;
                    *line = "{\"type\": 7}".into();
                    Ok(lines.join("\n") + "\n")
                })
            }
            Record::Job(..) => Ok(false),
            Record::Document(c, id) => Self::overwrite(
                &tenant.join(format!("documents/{c}/{id}.json")),
                "{not json",
            ),
            Record::MetricRecord(r) => {
                let dir = tenant.join("metrics");
                let path = std::fs::read_dir(&dir)
                    .map_err(|e| e.to_string())?
                    .filter_map(Result::ok)
                    .map(|w| w.path().join(format!("records/{r}.json")))
                    .find(|p| p.exists())
                    .ok_or("no such metric record")?;
                Self::overwrite(&path, "{not json")
            }
            Record::Pattern(wf, _, key) => Self::edit(
                &tenant.join(format!("metrics/{wf}/patterns.json")),
                |text| {
                    let mut all: Vec<serde_json::Value> =
                        serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    let entry = all
                        .iter_mut()
                        .find(|p| p["key"] == json!(key))
                        .ok_or("no such pattern")?;
                    *entry = json!("not a pattern");
                    serde_json::to_string_pretty(&all).map_err(|e| e.to_string())
                },
            ),
        }
    }
}

/// W10 for every kind of record the fs adapter keeps (storage_contract::damage); it
/// has no queue.
#[tokio::test]
async fn w10_a_damaged_file_of_any_kind_is_skipped_and_corrupt_when_read() -> TestResult {
    let root = temp_root("w10-all");
    let set = FsStore::open(&root)?.store_set();
    let checked =
        storage_contract::damage::damaged_records_are_skipped(&set, &FileDamager(root.clone()))
            .await?;
    assert_eq!(
        checked,
        ["run", "event", "document", "metric record", "pattern"]
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
