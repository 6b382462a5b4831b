//! The console over a memory store, on a loopback port, read over HTTP as a browser
//! would: each page shows what the storage holds, escapes it, and says what is
//! missing; with a token, nothing is served without it.

use std::time::Duration;

use flowstore_console::{Console, ConsoleOptions};
use serde_json::json;
use storage_ports::{
    CompleteRun, Dequeue, JobQueueExt as _, NewJob, NewRun, NewWorkflowVersion, NodeExecution,
    NodeId, NodeStatus, QueueName, Run, RunError, RunId, RunOutcome, RunStep, Secret, TenantId,
    Timestamp, WorkflowId,
};
use storage_wiring::{Storage, StorageConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One GET; answers the status and the body.
async fn get(
    port: u16,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

async fn start(
    storage: Storage,
    options: ConsoleOptions,
) -> Result<u16, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(Console::new(storage, options).serve(listener));
    Ok(port)
}

async fn seeded() -> Result<(Storage, TenantId), Box<dyn std::error::Error>> {
    let storage = Storage::build(&StorageConfig::memory()).await?;
    let t = TenantId::new("acme")?;
    let started = Timestamp::from_micros(Timestamp::now().as_micros() - 10_000_000);
    let mut run = Run::started(NewRun {
        run_id: RunId::new("r-1")?,
        workflow_id: WorkflowId::new("etl")?,
        version: 2,
        inputs: json!({"note": "<script>alert(1)</script>"}),
        started_at: started,
    });
    let node = |id: &str, status, from: i64, to: i64| -> Result<RunStep, storage_ports::Error> {
        Ok(RunStep::Node(NodeExecution {
            node_id: NodeId::new(id)?,
            node_type: "http".into(),
            status,
            inputs: json!({}),
            outputs: json!({}),
            error: None,
            retries: 1,
            started_at: Timestamp::from_micros(started.as_micros() + from * 1_000_000),
            ended_at: Some(Timestamp::from_micros(started.as_micros() + to * 1_000_000)),
        }))
    };
    let steps = vec![
        node("fetch", NodeStatus::Succeeded, 0, 4)?,
        node("store", NodeStatus::Failed, 4, 9)?,
    ];
    run.apply(RunOutcome::failed(
        RunError {
            kind: "timeout".into(),
            message: "store took too long".into(),
            node_id: None,
            context: json!({}),
        },
        Timestamp::from_micros(started.as_micros() + 9_000_000),
    ));
    storage
        .ports()
        .runs
        .store_complete(&t, CompleteRun { run, steps })
        .await?;
    let wf = WorkflowId::new("etl")?;
    let workflows = &storage.ports().workflows;
    let title = json!("\"><img src=x onerror=alert(1)>");
    let mut first = NewWorkflowVersion::next(
        wf.clone(),
        json!({"nodes": ["fetch", "store"], "title": title}),
    );
    first.author = Some("ana".into());
    workflows.put(&t, first).await?;
    let second = NewWorkflowVersion::next(
        wf.clone(),
        json!({"nodes": ["fetch", "clean", "store"], "title": title}),
    )
    .with_parent(1);
    workflows.put(&t, second).await?;
    for (i, tokens) in [100.0, 120.0, 90.0].iter().enumerate() {
        storage
            .ports()
            .metrics
            .record(
                &t,
                storage_ports::RunMetric {
                    run_id: RunId::new(format!("m-{i}"))?,
                    workflow_id: wf.clone(),
                    version: 1,
                    status: storage_ports::RunStatus::Succeeded,
                    duration_ms: 50.0 * (i as f64 + 1.0),
                    finished_at: Timestamp::now(),
                    values: [(storage_ports::MetricName::new("tokens")?, *tokens)]
                        .into_iter()
                        .collect(),
                },
            )
            .await?;
    }
    storage
        .ports()
        .credentials
        .set(
            &t,
            &storage_ports::CredentialKey::new("api-token")?,
            &Secret::new("hunter2-value".into()),
        )
        .await?;
    let q = QueueName::new("mail")?;
    let queue = &storage.ports().queue;
    queue
        .enqueue(&t, &q, NewJob::new(json!(1)).with_max_attempts(1))
        .await?;
    let leased = queue
        .dequeue(&t, &q, Dequeue::one(Duration::from_secs(30)))
        .await?;
    let lease = &leased.first().ok_or("nothing dequeued")?.lease;
    let failure = storage_ports::JobFailure {
        error: "smtp said <no>".into(),
        retry: false,
    };
    queue.fail(&t, lease, failure).await?;
    Ok((storage, t))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_what_the_storage_holds() -> TestResult {
    let (storage, _) = seeded().await?;
    let port = start(storage, ConsoleOptions::default()).await?;

    let (status, overview) = get(port, "/?tenant=acme", None).await?;
    assert_eq!(status, 200, "{overview}");
    assert!(
        overview.contains("memory") && overview.contains("<td>runs</td><td>1</td>"),
        "{overview}"
    );

    let (status, runs) = get(port, "/runs?tenant=acme&status=failed", None).await?;
    assert_eq!(status, 200);
    assert!(
        runs.contains("href=\"/runs/r-1?tenant=acme\"") && runs.contains("failed"),
        "{runs}"
    );
    let (_, none) = get(port, "/runs?tenant=acme&status=succeeded", None).await?;
    assert!(
        !none.contains("/runs/r-1"),
        "the status filter let a failed run through"
    );

    let (status, run) = get(port, "/runs/r-1?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(
        run.contains("<svg") && run.contains(">fetch<") && run.contains(">store<"),
        "{run}"
    );
    assert!(run.contains("store took too long"), "the error is shown");
    assert!(
        run.contains("&lt;script&gt;") && !run.contains("<script>"),
        "a value from storage was not escaped: {run}"
    );

    let (status, queue) = get(port, "/queues/mail?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(queue.contains("smtp said &lt;no&gt;"), "{queue}");

    let (status, _) = get(port, "/runs/r-404?tenant=acme", None).await?;
    assert_eq!(status, 404);
    let (status, _) = get(port, "/runs?tenant=Not%20A%20Tenant", None).await?;
    assert_eq!(status, 400);
    // Another tenant sees nothing of acme's.
    let (_, other) = get(port, "/runs?tenant=globex", None).await?;
    assert!(!other.contains("r-1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_show_versions_lineage_and_a_marked_diff() -> TestResult {
    let (storage, _) = seeded().await?;
    let port = start(storage, ConsoleOptions::default()).await?;
    let (status, list) = get(port, "/workflows?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(
        list.contains("href=\"/workflows/etl?tenant=acme\"") && list.contains("v2"),
        "{list}"
    );
    let (status, one) = get(port, "/workflows/etl?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(
        one.contains(">ana<") && one.contains("aria-label=\"lineage\"") && one.contains("<line "),
        "{one}"
    );
    let (status, diff) = get(port, "/workflows/etl/diff?tenant=acme&a=1&b=2", None).await?;
    assert_eq!(status, 200);
    assert!(
        diff.contains("<tr class=\"ins\">") && diff.contains("+ - clean"),
        "the added line is marked: {diff}"
    );
    assert!(
        !diff.contains("<tr class=\"del\">"),
        "nothing was removed: {diff}"
    );
    assert!(
        !diff.contains("<img") && diff.contains("&lt;img"),
        "a definition's markup was not escaped: {diff}"
    );
    assert_eq!(
        get(port, "/workflows/etl/diff?tenant=acme&a=1&b=9", None)
            .await?
            .0,
        404
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_chart_a_value_against_its_baseline_and_credentials_show_keys_only() -> TestResult {
    let (storage, _) = seeded().await?;
    let port = start(storage, ConsoleOptions::default()).await?;
    let (status, m) = get(port, "/metrics/etl?tenant=acme&name=tokens&hours=24", None).await?;
    assert_eq!(status, 200, "{m}");
    assert!(m.contains("<td>3</td>") && m.contains("<polyline"), "{m}");
    assert!(m.contains("median 100 of the last 3 values"), "{m}");
    let (status, c) = get(port, "/credentials?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(c.contains(">api-token<") && !c.contains("hunter2"), "{c}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_json_and_json_errors() -> TestResult {
    let (storage, _) = seeded().await?;
    let port = start(storage, ConsoleOptions::default()).await?;
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body);
    let (status, o) = get(port, "/api/overview?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert_eq!(json(&o)?["stats"]["runs"], 1);
    let (_, runs) = get(port, "/api/runs?tenant=acme&status=failed", None).await?;
    let runs = json(&runs)?;
    assert_eq!(runs["items"][0]["run_id"], "r-1", "{runs}");
    assert!(runs["next"].is_null());
    let (_, run) = get(port, "/api/runs/r-1?tenant=acme", None).await?;
    let run = json(&run)?;
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(2), "{run}");
    assert_eq!(
        run["run"]["inputs"]["note"], "<script>alert(1)</script>",
        "JSON keeps the value as stored"
    );
    let (_, q) = get(port, "/api/queues/mail?tenant=acme", None).await?;
    let q = json(&q)?;
    assert_eq!(
        (
            q["stats"]["dead"].as_u64(),
            q["dead"][0]["last_error"].as_str()
        ),
        (Some(1), Some("smtp said <no>"))
    );
    let (_, w) = get(port, "/api/workflows?tenant=acme", None).await?;
    assert_eq!(json(&w)?["items"][0]["version"], 2);
    let (status, missing) = get(port, "/api/runs/r-404?tenant=acme", None).await?;
    assert_eq!(status, 404);
    assert!(
        json(&missing)?["error"]
            .as_str()
            .is_some_and(|e| e.contains("r-404")),
        "{missing}"
    );
    assert_eq!(
        get(port, "/api/runs?tenant=acme&cursor=zz", None).await?.0,
        400
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_nothing_is_served_without_it() -> TestResult {
    let (storage, _) = seeded().await?;
    let options = ConsoleOptions {
        token: Some(Secret::new("s3cret-token".into())),
    };
    let port = start(storage, options).await?;
    let (status, body) = get(port, "/?tenant=acme", None).await?;
    assert_eq!(status, 401);
    assert!(!body.contains("runs"), "{body}");
    assert_eq!(get(port, "/?tenant=acme", Some("wrong")).await?.0, 401);
    assert_eq!(
        get(port, "/?tenant=acme", Some("s3cret-token")).await?.0,
        200
    );
    Ok(())
}
