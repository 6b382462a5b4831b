//! Just enough of the W3C WebDriver protocol to drive Debian's Chromium through
//! `chromedriver`: a session with the flags Chromium needs as root on a closed
//! network, navigation, elements, clicks, scripts and the browser's console log.
//! Each call is one JSON request; an error answer carries WebDriver's own message.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The key WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env(name: &str, what: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: {what} (apt-get install chromium chromium-driver), and run `cargo xtask test`, which sets it").into()
    })
}

impl Driver {
    /// Starts `chromedriver` and waits until it is ready.
    pub async fn start() -> Result<Self, Error> {
        let bin = env("FLOWSTORE_TEST_CHROMEDRIVER", "Debian's chromedriver")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                let v: Value = r.json().await?;
                if v["value"]["ready"] == true {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready in 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium session, `width` px wide, with a fresh profile.
    pub async fn session(&self, width: u32) -> Result<Session<'_>, Error> {
        let chromium = env("FLOWSTORE_TEST_CHROMIUM", "Debian's Chromium")?;
        let profile = std::env::temp_dir().join(format!(
            "flowstore-webdriver-{}",
            storage_ports::RunId::generate()
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    format!("--window-size={width},1400"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(caps),
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?
            .to_owned();
        Ok(Session {
            driver: self,
            url: format!("{}/session/{id}", self.base),
            profile,
        })
    }
}

/// One request; WebDriver's `value`, or its error as text.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status();
    let v: Value = res.json().await?;
    if !status.is_success() {
        return Err(format!(
            "{url}: {} {}",
            v["value"]["error"],
            v["value"]["message"].as_str().unwrap_or("")
        )
        .into());
    }
    Ok(v.get("value").cloned().unwrap_or(Value::Null))
}

/// A browser session, closed when dropped.
pub struct Session<'d> {
    driver: &'d Driver,
    url: String,
    profile: PathBuf,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        call(
            &self.driver.http,
            method,
            &format!("{}{path}", self.url),
            body,
        )
        .await
    }

    /// Loads `url` and waits for it.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.send(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await?;
        Ok(())
    }

    /// Every element matching a CSS selector.
    pub async fn all(&self, css: &str) -> Result<Vec<Element>, Error> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element, Error> {
        self.all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no element matches {css:?}").into())
    }

    /// An element's rendered text.
    pub async fn text(&self, e: &Element) -> Result<String, Error> {
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or("").to_owned())
    }

    /// Clicks an element (and, for a link or a form's button, waits for the load).
    pub async fn click(&self, e: &Element) -> Result<(), Error> {
        self.send(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    /// Clicks a link or a form's button and waits until the page it leads to has
    /// loaded: the old document is marked first, so a new one is told from it.
    pub async fn click_to_load(&self, e: &Element) -> Result<(), Error> {
        self.eval("window.flowstoreOldPage = true; return true")
            .await?;
        self.click(e).await?;
        self.wait_for(
            "return window.flowstoreOldPage !== true && document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await
    }

    /// Runs a script in the page; its return value.
    pub async fn eval(&self, script: &str) -> Result<Value, Error> {
        self.send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The browser console's entries since the last call: `(level, message)`.
    pub async fn console(&self) -> Result<Vec<(String, String)>, Error> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_owned(),
                    e["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect())
    }

    /// Fails when the page logged an error or a warning to the console.
    pub async fn assert_quiet(&self, page: &str) -> Result<(), Error> {
        let bad: Vec<_> = self
            .console()
            .await?
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("{page} logged to the console: {bad:?}").into())
        }
    }

    /// Waits up to `within` for `script` to return `true`.
    pub async fn wait_for(&self, script: &str, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.eval(script).await? == json!(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not true within {within:?}: {script}").into())
    }
}

impl Session<'_> {
    /// Ends the session (its browser with it).
    pub async fn close(self) -> Result<(), Error> {
        self.send(reqwest::Method::DELETE, "", None).await?;
        Ok(())
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
