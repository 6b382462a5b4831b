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

/// One request; answers the status, the head and the body.
async fn request(
    port: u16,
    head: &str,
    body: &str,
) -> Result<(u16, String, String), Box<dyn std::error::Error>> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!(
            "{head}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
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
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_owned(), body.to_owned()))
}

/// One GET; answers the status and the body.
async fn get(
    port: u16,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let auth = token
        .map(|t| format!("\r\nAuthorization: Bearer {t}"))
        .unwrap_or_default();
    let (status, _, body) = request(port, &format!("GET {path} HTTP/1.1{auth}"), "").await?;
    Ok((status, body))
}

/// One form POST with `extra` header lines; answers the status and the head.
async fn post(
    port: u16,
    path: &str,
    form: &str,
    extra: &str,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let (status, head, _) = request(
        port,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded{extra}"),
        form,
    )
    .await?;
    Ok((status, head))
}

/// The CSRF token a page's action forms carry.
fn csrf_of(page: &str) -> Option<String> {
    let rest = page.split("name=\"csrf\" value=\"").nth(1)?;
    rest.split('"').next().map(str::to_owned)
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
    // The seeded etl run took 9 s: its duration is charted from the run itself.
    assert!(
        m.contains("<h2>Durations (ms)</h2><svg") && m.contains("<p>1 runs;"),
        "{m}"
    );
    let (status, c) = get(port, "/credentials?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert!(c.contains(">api-token<") && !c.contains("hunter2"), "{c}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_json_and_json_errors() -> TestResult {
    let (storage, t) = seeded().await?;
    let port = start(storage.clone(), ConsoleOptions::default()).await?;
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body);
    let (status, o) = get(port, "/api/overview?tenant=acme", None).await?;
    assert_eq!(status, 200);
    assert_eq!(json(&o)?["stats"]["runs"], 1);
    let (_, runs) = get(port, "/api/runs?tenant=acme&status=failed", None).await?;
    let runs = json(&runs)?;
    assert_eq!(runs["items"][0]["run_id"], "r-1", "{runs}");
    assert!(runs["next"].is_null());
    for (filter, found) in [
        ("version=2", 1),
        ("version=3", 0),
        ("hours=1", 1),
        ("version=2&hours=1&status=failed", 1),
    ] {
        let (_, page) = get(port, &format!("/api/runs?tenant=acme&{filter}"), None).await?;
        let page = json(&page)?;
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(found),
            "{filter}: {page}"
        );
    }
    assert_eq!(
        get(port, "/api/runs?tenant=acme&version=two", None)
            .await?
            .0,
        400
    );
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
    let queue = &storage.ports().queue;
    let mail = QueueName::new("mail")?;
    queue
        .enqueue(
            &t,
            &mail,
            NewJob::new(json!("later")).with_delay(Duration::from_secs(600)),
        )
        .await?;
    queue.enqueue(&t, &mail, NewJob::new(json!("now"))).await?;
    queue
        .dequeue(&t, &mail, Dequeue::one(Duration::from_secs(90)))
        .await?;
    let (_, q) = get(port, "/api/queues/mail?tenant=acme", None).await?;
    let q = json(&q)?;
    assert!(q["scheduled"][0]["scheduled_for"].is_string(), "{q}");
    assert!(q["running"][0]["lease_expires_at"].is_string(), "{q}");
    let (_, page) = get(port, "/queues/mail?tenant=acme", None).await?;
    assert!(page.contains("lease expires") && page.contains("<h2>Scheduled</h2>"));
    let (status, head, _) =
        request(port, "GET /queues?tenant=acme&queue=mail HTTP/1.1", "").await?;
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /queues/mail?tenant=acme"),
        "{head}"
    );
    let (_, overview) = get(port, "/?tenant=acme", None).await?;
    assert!(
        overview.contains("<tr><td>failed</td><td>1</td></tr>"),
        "the failed run of the last hour: {overview}"
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
        ..ConsoleOptions::default()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_by_default_no_button_and_every_action_refused() -> TestResult {
    let (storage, t) = seeded().await?;
    let port = start(storage.clone(), ConsoleOptions::default()).await?;
    let q = QueueName::new("mail")?;
    let dead = storage.ports().queue.dead(&t, &q, 10).await?;
    let job = dead.first().ok_or("no dead job")?.job_id.clone();
    let (_, page) = get(port, "/queues/mail?tenant=acme", None).await?;
    assert!(!page.contains("<form class=\"act\""), "{page}");
    let (_, run) = get(port, "/runs/r-1?tenant=acme", None).await?;
    assert!(!run.contains("Delete this run"), "{run}");
    for path in [
        format!("/queues/mail/jobs/{}/requeue", job.as_str()),
        "/queues/mail/pause".to_owned(),
        "/runs/r-1/delete".to_owned(),
    ] {
        let (status, _) = post(port, &path, "tenant=acme&csrf=x", "").await?;
        assert_eq!(status, 403, "{path} acted without --allow-actions");
    }
    assert_eq!(storage.ports().queue.stats(&t, &q).await?.dead, 1);
    assert!(!storage.ports().queue.stats(&t, &q).await?.paused);
    storage.ports().runs.get(&t, &RunId::new("r-1")?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_act_only_with_the_pages_csrf_token() -> TestResult {
    let (storage, t) = seeded().await?;
    let options = ConsoleOptions {
        allow_actions: true,
        ..ConsoleOptions::default()
    };
    let port = start(storage.clone(), options).await?;
    let queue = &storage.ports().queue;
    let q = QueueName::new("mail")?;
    let job = queue
        .dead(&t, &q, 10)
        .await?
        .first()
        .ok_or("no dead job")?
        .job_id
        .clone();
    let (_, page) = get(port, "/queues/mail?tenant=acme", None).await?;
    let token = csrf_of(&page).ok_or("the queue page has no action form")?;
    assert!(
        page.contains("Requeue") && page.contains("Pause the queue"),
        "{page}"
    );
    let requeue = format!("/queues/mail/jobs/{}/requeue", job.as_str());
    for (form, extra, why) in [
        ("tenant=acme".to_owned(), "", "no token"),
        ("tenant=acme&csrf=0000".to_owned(), "", "a wrong token"),
        (
            format!("tenant=acme&csrf={token}"),
            "\r\nSec-Fetch-Site: cross-site",
            "a cross-site request",
        ),
    ] {
        let (status, _) = post(port, &requeue, &form, extra).await?;
        assert_eq!(status, 403, "{why} was let through");
        assert_eq!(queue.stats(&t, &q).await?.dead, 1, "{why} requeued");
    }
    let form = format!("tenant=acme&csrf={token}");
    let (status, head) = post(port, &requeue, &form, "").await?;
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /queues/mail?tenant=acme"),
        "{head}"
    );
    let s = queue.stats(&t, &q).await?;
    assert_eq!((s.dead, s.pending), (0, 1), "the dead job is pending again");

    assert_eq!(post(port, "/queues/mail/pause", &form, "").await?.0, 303);
    assert!(queue.stats(&t, &q).await?.paused);
    let (_, paused) = get(port, "/queues/mail?tenant=acme", None).await?;
    assert!(paused.contains("Resume the queue"), "{paused}");
    assert_eq!(post(port, "/queues/mail/resume", &form, "").await?.0, 303);
    assert!(!queue.stats(&t, &q).await?.paused);

    let pending = queue
        .jobs(&t, &q, storage_ports::JobStatus::Pending, 10)
        .await?;
    let again = pending.first().ok_or("nothing pending")?.job_id.clone();
    let cancel = format!("/queues/mail/jobs/{}/cancel", again.as_str());
    assert_eq!(post(port, &cancel, &form, "").await?.0, 303);
    assert_eq!(
        queue.job(&t, &q, &again).await?.status,
        storage_ports::JobStatus::Cancelled
    );
    let (status, _) = post(port, &cancel, &form, "").await?;
    assert_eq!(status, 409, "cancelling a finished job says why");

    let (_, run) = get(port, "/runs/r-1?tenant=acme", None).await?;
    assert!(run.contains("Delete this run"), "{run}");
    let (status, head) = post(port, "/runs/r-1/delete", &form, "").await?;
    assert_eq!(status, 303, "{head}");
    assert_eq!(get(port, "/api/runs/r-1?tenant=acme", None).await?.0, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_streams_its_new_events_until_it_finishes() -> TestResult {
    let (storage, t) = seeded().await?;
    let runs = &storage.ports().runs;
    let id = RunId::new("live-1")?;
    runs.start(
        &t,
        NewRun {
            run_id: id.clone(),
            workflow_id: WorkflowId::new("etl")?,
            version: 2,
            inputs: json!({}),
            started_at: Timestamp::now(),
        },
    )
    .await?;
    let port = start(storage.clone(), ConsoleOptions::default()).await?;
    let (_, page) = get(port, "/runs/live-1?tenant=acme", None).await?;
    assert!(
        page.contains("data-live=\"true\"") && page.contains("src=\"/assets/live.js\""),
        "a running run's page does not go live: {page}"
    );
    let (status, _, script) = request(port, "GET /assets/live.js HTTP/1.1", "").await?;
    assert_eq!(status, 200);
    assert!(script.contains("textContent") && !script.contains("innerHTML"));

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /api/runs/live-1/events?tenant=acme&from=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let writer = {
        let storage = storage.clone();
        let (t, id) = (t.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let runs = &storage.ports().runs;
            let step = RunStep::Snapshot(storage_ports::VariableSnapshot {
                name: "<b>count</b>".into(),
                old_value: json!(0),
                new_value: json!(1),
                at: Timestamp::now(),
            });
            runs.append(&t, &id, step).await?;
            runs.finish(&t, &id, RunOutcome::succeeded(json!({}), Timestamp::now()))
                .await?;
            Ok::<_, storage_ports::Error>(())
        })
    };
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !seen.contains("finished succeeded") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read).await??;
    writer.await??;
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(
        seen.contains("event: run-event") && seen.contains("snapshot <b>count</b>"),
        "the new snapshot was not streamed: {seen}"
    );
    assert!(
        !seen.contains("\"seq\":1,"),
        "from=2 sent event 1 again: {seen}"
    );
    let (_, done) = get(port, "/runs/live-1?tenant=acme", None).await?;
    assert!(done.contains("data-live=\"false\"") && !done.contains("live.js"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_when_the_layer_is_on_and_every_answer_has_a_policy() -> TestResult {
    let (storage, _) = seeded().await?;
    let off = start(storage.clone(), ConsoleOptions::default()).await?;
    let (status, body) = get(off, "/metrics", None).await?;
    assert_eq!(status, 404);
    assert!(body.contains("flowstore --metrics ui"), "{body}");
    let options = ConsoleOptions {
        figures: Some(flowstore_console::Figures::new(|| {
            "flowstore_port_calls_total{port=\"runs\"} 3\n".to_owned()
        })),
        ..ConsoleOptions::default()
    };
    let on = start(storage, options).await?;
    let (status, head, body) = request(on, "GET /metrics HTTP/1.1", "").await?;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("flowstore_port_calls_total"), "{body}");
    let (_, head, _) = request(on, "GET /?tenant=acme HTTP/1.1", "").await?;
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    Ok(())
}
