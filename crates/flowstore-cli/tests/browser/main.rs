//! The console in a real browser (issue 17): headless Chromium (Debian's, which
//! `cargo xtask test` installs) loads each page of `flowstore ui` over a store filled
//! by `flowstore demo`, with the flags it needs as root on a closed network. The DOM
//! it builds shows the same numbers as `flowstore stats --json`, stored markup stays
//! text (no element is made from it), no script error is logged, and a screenshot of
//! each page at 1280 and 390 px wide goes to `target/ui-screenshots/`.
//!
//! A second test drives the console through WebDriver (Debian's chromedriver): paging
//! walks every run once, a live run's new events appear without a reload, the diff
//! marks the changed lines, and actions work only with `--allow-actions` and the
//! page's CSRF token.

mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn flowstore(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
    use std::io::Write;
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

/// The console, killed when dropped.
struct Ui(Child, String);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ui(dir: &Path) -> Result<Ui, Box<dyn std::error::Error>> {
    start_ui_with(dir, &[])
}

fn start_ui_with(dir: &Path, extra: &[&str]) -> Result<Ui, Box<dyn std::error::Error>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(["ui", "--listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Keep reading what it says: a closed pipe would fail its next line.
    std::thread::spawn(move || {
        for said in reader.lines().map_while(Result::ok) {
            eprintln!("flowstore ui: {said}");
        }
    });
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| format!("no address in {line:?}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Ui(child, base))
}

/// Chromium with the flags it needs as root on a closed network, a fresh profile.
fn chromium(args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    let bin = std::env::var("FLOWSTORE_TEST_CHROMIUM").map_err(|_| {
        "FLOWSTORE_TEST_CHROMIUM is not set: install Debian's chromium (apt-get install chromium chromium-driver) and run `cargo xtask test`, which sets it"
    })?;
    let profile = std::env::temp_dir().join(format!(
        "flowstore-chromium-{}",
        storage_ports::RunId::generate()
    ));
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let _ = std::fs::remove_dir_all(&profile);
    Ok(out)
}

/// The DOM Chromium built for `url`, after failing on any script error it logged.
fn dom(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let out = chromium(&["--dump-dom", url])?;
    let log = String::from_utf8_lossy(&out.stderr);
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") || line.contains("Uncaught")),
            "{url}: the page logged a script error: {line}"
        );
    }
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("</html>"), "{url}: no page was loaded: {log}");
    Ok(dom)
}

fn screenshots(url: &str, name: &str) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir)?;
    let mut made = Vec::new();
    for width in [1280, 390] {
        let file = dir.join(format!("{name}-{width}.png"));
        let _ = std::fs::remove_file(&file);
        chromium(&[
            &format!("--window-size={width},1400"),
            &format!("--screenshot={}", file.display()),
            url,
        ])?;
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{url}: no screenshot at {width} px");
        made.push(file);
    }
    Ok(made)
}

#[test]
fn the_console_in_chromium_over_the_demo_store() -> TestResult {
    let dir = std::env::temp_dir().join(format!(
        "flowstore-browser-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let demo = flowstore(&dir, &["demo"], None)?;
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    // Markup in a stored definition must stay text in the browser.
    let put = flowstore(
        &dir,
        &["--tenant", "demo", "workflow", "put", "markup"],
        Some("title: '\"><img src=x onerror=alert(1)><script>alert(2)</script>'\nnodes: [a]\n"),
    )?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(
        &flowstore(&dir, &["--tenant", "demo", "stats", "--json"], None)?.stdout,
    )?;
    let runs = stats["runs"].as_u64().ok_or("stats --json has no runs")?;
    assert!(runs > 0, "the demo stored no runs");

    let ui = start_ui(&dir)?;
    let base = &ui.1;
    let overview = dom(&format!("{base}/?tenant=demo"))?;
    assert!(
        overview.contains(&format!("<td>runs</td><td>{runs}</td>")),
        "the overview shows other numbers than stats: {overview}"
    );

    let list = dom(&format!("{base}/runs?tenant=demo"))?;
    let first = list
        .split("href=\"/runs/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .ok_or("the runs page lists no run")?
        .to_owned();
    let run = dom(&format!("{base}/runs/{first}?tenant=demo"))?;
    assert!(
        run.contains("<svg") && run.contains("<rect"),
        "the run page draws no timeline"
    );

    let metrics = dom(&format!(
        "{base}/metrics/order-pipeline?tenant=demo&name=tokens&hours=24"
    ))?;
    assert!(
        metrics.contains("<polyline") && metrics.contains("baseline: median"),
        "the demo's tokens are not charted: {metrics}"
    );

    let markup = dom(&format!("{base}/workflows/markup?tenant=demo"))?;
    assert!(markup.contains("Workflow markup"), "{markup}");
    let diffed = dom(&format!("{base}/workflows/markup/diff?tenant=demo&a=1&b=1"))?;
    assert!(
        !diffed.contains("<img") && !diffed.contains("<script>alert"),
        "stored markup became elements: {diffed}"
    );
    assert!(diffed.contains("&lt;img"), "{diffed}");

    let mut shots = Vec::new();
    for (url, name) in [
        (format!("{base}/?tenant=demo"), "overview"),
        (format!("{base}/workflows?tenant=demo"), "workflows"),
        (format!("{base}/runs?tenant=demo"), "runs"),
        (format!("{base}/runs/{first}?tenant=demo"), "run"),
        (
            format!("{base}/metrics/order-pipeline?tenant=demo&name=tokens&hours=24"),
            "metrics",
        ),
        (
            format!("{base}/workflows/order-pipeline?tenant=demo"),
            "workflow",
        ),
        (
            format!("{base}/workflows/order-pipeline/diff?tenant=demo&a=1&b=3"),
            "diff",
        ),
    ] {
        shots.extend(screenshots(&url, name)?);
    }
    eprintln!("screenshots: {shots:?}");
    drop(ui);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The embedded default's storage as the CLI opens it in `dir` (credentials aside).
async fn storage_in(dir: &Path) -> Result<storage_wiring::Storage, Box<dyn std::error::Error>> {
    use storage_wiring::{BackendConfig, StorageConfig};
    let data = dir.join("flowstore-data");
    let db =
        BackendConfig::of("sqlite").with("path", data.join("flowstore.db").display().to_string());
    let mut config = StorageConfig::memory();
    config.workflows = BackendConfig::of("fs").with("path", data.display().to_string());
    config.runs = db.clone();
    config.metrics = db.clone();
    config.queue = db.clone();
    config.documents = db;
    Ok(storage_wiring::Storage::build(&config).await?)
}

/// What a page must never do with stored markup: run it.
const HOSTILE: &str =
    "\"><img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";

/// Whether the page made no element of stored markup and ran none of it.
const UNTOUCHED: &str = "return !document.title.includes('pwned') && document.querySelectorAll('main img, main script:not([src=\"/assets/live.js\"])').length === 0";

type WdResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn boxed(e: Box<dyn std::error::Error>) -> Box<dyn std::error::Error + Send + Sync> {
    e.to_string().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_driven_through_webdriver() -> WdResult {
    use serde_json::json;
    use storage_ports::{
        CompleteRun, Dequeue, JobFailure, JobQueueExt as _, NewJob, NewRun, QueueName, Run,
        RunError, RunId, RunOutcome, RunStep, TenantId, Timestamp, WorkflowId,
    };
    let dir = std::env::temp_dir().join(format!(
        "flowstore-webdriver-{}",
        storage_ports::RunId::generate()
    ));
    std::fs::create_dir_all(&dir)?;
    let demo = flowstore(&dir, &["demo", "--runs", "120"], None)?;
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let storage = storage_in(&dir).await.map_err(boxed)?;
    let t = TenantId::new("demo")?;
    let wf = WorkflowId::new("order-pipeline")?;

    // Stored markup in a run's error, a dead job's error and a document.
    let mut bad = Run::started(NewRun {
        run_id: RunId::new("hostile-run")?,
        workflow_id: wf.clone(),
        version: 3,
        inputs: json!({"note": HOSTILE}),
        started_at: Timestamp::now(),
    });
    bad.apply(RunOutcome::failed(
        RunError {
            kind: HOSTILE.into(),
            message: HOSTILE.into(),
            node_id: None,
            context: json!({}),
        },
        Timestamp::now(),
    ));
    let runs = &storage.ports().runs;
    runs.store_complete(
        &t,
        CompleteRun {
            run: bad,
            steps: vec![],
        },
    )
    .await?;
    let mail = QueueName::new("mail")?;
    let queue = &storage.ports().queue;
    queue
        .enqueue(&t, &mail, NewJob::new(json!(HOSTILE)).with_max_attempts(1))
        .await?;
    let leased = queue
        .dequeue(&t, &mail, Dequeue::one(Duration::from_secs(30)))
        .await?;
    let lease = &leased.first().ok_or("nothing dequeued")?.lease;
    queue
        .fail(
            &t,
            lease,
            JobFailure {
                error: HOSTILE.into(),
                retry: false,
            },
        )
        .await?;
    storage
        .ports()
        .documents
        .create(
            &t,
            &storage_ports::CollectionName::new("notes")?,
            None,
            json!({"text": HOSTILE}),
        )
        .await?;

    let stats: serde_json::Value = serde_json::from_slice(
        &flowstore(&dir, &["--tenant", "demo", "stats", "--json"], None)?.stdout,
    )?;
    let ro = start_ui(&dir).map_err(boxed)?;
    let rw = start_ui_with(&dir, &["--allow-actions"]).map_err(boxed)?;
    let driver = webdriver::Driver::start().await?;
    let b = driver.session(1280).await?;

    // Every page loads quietly, and stored markup stays text.
    let base = ro.1.clone();
    for path in [
        "/?tenant=demo",
        "/workflows?tenant=demo",
        "/workflows/order-pipeline?tenant=demo",
        "/runs?tenant=demo",
        "/runs/hostile-run?tenant=demo",
        "/queues/runs?tenant=demo",
        "/queues/mail?tenant=demo",
        "/metrics/order-pipeline?tenant=demo&name=tokens&hours=24",
        "/credentials?tenant=demo",
    ] {
        b.goto(&format!("{base}{path}")).await?;
        assert_eq!(
            b.eval(UNTOUCHED).await?,
            json!(true),
            "{path}: stored markup ran"
        );
        b.assert_quiet(path).await?;
        assert!(
            b.all("form.act").await?.is_empty(),
            "{path}: a read-only console shows an action"
        );
    }
    // The overview's numbers are `stats --json`'s.
    b.goto(&format!("{base}/?tenant=demo")).await?;
    for (label, key) in [
        ("runs", "runs"),
        ("documents", "documents"),
        ("queue depth (jobs not acknowledged, every queue)", "jobs"),
    ] {
        let shown = b
            .eval(&format!("return [...document.querySelectorAll('tr')].map(r => r.cells).filter(c => c.length === 2 && c[0].textContent === '{label}').map(c => c[1].textContent)[0] || null"))
            .await?;
        assert_eq!(
            shown,
            json!(stats[key].to_string()),
            "the overview's {label}"
        );
    }

    // Paging walks every run exactly once.
    b.goto(&format!("{base}/runs?tenant=demo")).await?;
    let mut seen = Vec::new();
    loop {
        for link in b.all("table a[href^='/runs/']").await? {
            seen.push(b.text(&link).await?);
        }
        b.assert_quiet("a runs page").await?;
        let next = b.all("a[href*='cursor=']").await?;
        let Some(next) = next.first() else { break };
        b.click_to_load(next).await?;
    }
    let total = stats["runs"].as_u64().ok_or("no runs in stats")?;
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a run was listed twice");
    assert_eq!(seen.len() as u64, total, "paging missed runs");

    // The diff marks exactly the changed lines.
    b.goto(&format!(
        "{base}/workflows/order-pipeline/diff?tenant=demo&a=1&b=3"
    ))
    .await?;
    let marked = b
        .eval("return [...document.querySelectorAll('tr.del, tr.ins')].map(r => r.textContent.trim())")
        .await?;
    assert_eq!(
        marked,
        json!(["- revision: 1", "+ revision: 3"]),
        "the marked lines"
    );
    let same = b
        .eval(
            "return [...document.querySelectorAll('table.diff tr:not(.del):not(.ins) td')].length",
        )
        .await?;
    assert!(
        same.as_u64().is_some_and(|n| n >= 4),
        "unchanged lines are shown side by side"
    );

    // A live run's new events appear without a reload.
    let live = RunId::new("live-run")?;
    runs.start(
        &t,
        NewRun {
            run_id: live.clone(),
            workflow_id: wf.clone(),
            version: 3,
            inputs: json!({}),
            started_at: Timestamp::now(),
        },
    )
    .await?;
    b.goto(&format!("{base}/runs/live-run?tenant=demo")).await?;
    b.wait_for(
        "return document.getElementById('live').textContent.startsWith('live')",
        Duration::from_secs(5),
    )
    .await?;
    b.eval("window.flowstoreMarker = 42; return true").await?;
    runs.append(
        &t,
        &live,
        RunStep::Snapshot(storage_ports::VariableSnapshot {
            name: HOSTILE.into(),
            old_value: json!(null),
            new_value: json!(1),
            at: Timestamp::now(),
        }),
    )
    .await?;
    b.wait_for(
        "return [...document.querySelectorAll('#events tr.new')].some(r => r.textContent.includes('snapshot \"><img'))",
        Duration::from_secs(10),
    )
    .await?;
    runs.finish(
        &t,
        &live,
        RunOutcome::succeeded(json!({}), Timestamp::now()),
    )
    .await?;
    b.wait_for(
        "return document.getElementById('live').textContent.startsWith('finished')",
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(
        b.eval("return window.flowstoreMarker").await?,
        json!(42),
        "the page was reloaded"
    );
    assert_eq!(
        b.eval(UNTOUCHED).await?,
        json!(true),
        "a streamed event ran markup"
    );
    b.assert_quiet("the live run page").await?;

    // Actions: only on the console started with --allow-actions, only with its token.
    let dead = queue.dead(&t, &mail, 10).await?;
    let job = dead.first().ok_or("no dead job")?.job_id.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let requeue = format!("/queues/mail/jobs/{}/requeue", job.as_str());
    for (console, form) in [
        (&ro.1, "tenant=demo&csrf=guess"),
        (&rw.1, "tenant=demo"),
        (&rw.1, "tenant=demo&csrf=guess"),
    ] {
        let status = http
            .post(format!("{console}{requeue}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?
            .status();
        assert_eq!(status.as_u16(), 403, "{console} {form} was let through");
    }
    assert_eq!(
        queue.stats(&t, &mail).await?.dead,
        1,
        "a refused action acted"
    );
    let rwb = &rw.1;
    b.goto(&format!("{rwb}/queues/mail?tenant=demo")).await?;
    let button = b.find("#dead form.act button").await?;
    b.click_to_load(&button).await?;
    // Back on the queue page once the POST was answered.
    b.wait_for(
        "return location.pathname + location.search === '/queues/mail?tenant=demo' && document.readyState === 'complete'",
        Duration::from_secs(10),
    )
    .await?;
    let s = queue.stats(&t, &mail).await?;
    assert_eq!((s.dead, s.pending), (0, 1), "the dead job was not requeued");
    assert!(
        b.all("#dead form.act").await?.is_empty(),
        "the page still lists it as dead"
    );
    b.click_to_load(&b.find("form.act[action$='/pause'] button").await?)
        .await?;
    assert_eq!(b.text(&b.find("#paused").await?).await?, "yes");
    assert!(queue.stats(&t, &mail).await?.paused);
    b.click_to_load(&b.find("form.act[action$='/resume'] button").await?)
        .await?;
    assert_eq!(b.text(&b.find("#paused").await?).await?, "no");
    b.goto(&format!("{rwb}/runs/hostile-run?tenant=demo"))
        .await?;
    b.click_to_load(&b.find("form.act[action$='/delete'] button").await?)
        .await?;
    b.wait_for(
        "return location.pathname === '/runs' && document.readyState === 'complete'",
        Duration::from_secs(10),
    )
    .await?;
    assert!(
        runs.get(&t, &RunId::new("hostile-run")?).await.is_err(),
        "the run was not deleted"
    );
    b.assert_quiet("the actions").await?;

    b.close().await?;
    drop((ro, rw, driver));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
