//! The console in a real browser (issue 17): headless Chromium (Debian's, which
//! `cargo xtask test` installs) loads each page of `flowstore ui` over a store filled
//! by `flowstore demo`, with the flags it needs as root on a closed network. The DOM
//! it builds shows the same numbers as `flowstore stats --json`, stored markup stays
//! text (no element is made from it), no script error is logged, and a screenshot of
//! each page at 1280 and 390 px wide goes to `target/ui-screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .args(["ui", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line)?;
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
    ] {
        shots.extend(screenshots(&url, name)?);
    }
    eprintln!("screenshots: {shots:?}");
    drop(ui);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
