//! Crash safety (R1): run writers in child processes, SIGKILL them at random moments,
//! and collect what they acknowledged, so a test can check that every acknowledged
//! write survived and the store opens cleanly.
//!
//! The children are the test binary itself: [`kill_rounds`] starts it again running
//! only `test_name`, with `role_var` set; the test sees the variable and acts as the
//! writer, printing `acked <id>` after each write that returned `Ok`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small xorshift generator: random kill moments without a dependency.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Prints one acknowledgement, in the form [`kill_rounds`] collects.
pub fn ack(id: &str) {
    println!("acked {id}");
}

/// Starts `rounds` writer processes one after another, kills each with SIGKILL after a
/// random delay in `min_delay..max_delay`, and returns every acknowledged id.
///
/// # Errors
/// A child that could not be started, or one that exited on its own with a failure
/// (its output is in the error).
pub fn kill_rounds(
    test_name: &str,
    role_var: &str,
    dir: &Path,
    rounds: usize,
    min_delay: Duration,
    max_delay: Duration,
) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let mut jitter = Jitter::new();
    let mut acked = Vec::new();
    let span = u64::try_from((max_delay.saturating_sub(min_delay)).as_micros()).unwrap_or(1);
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
            .env(role_var, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("round {round}: cannot start the writer: {e}"))?;
        let stdout = child.stdout.take().ok_or("the writer has no stdout")?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                // libtest may print its own text on the line of the first ack.
                .filter_map(|l| l.split_once("acked ").map(|(_, id)| id.trim().to_owned()))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(min_delay + Duration::from_micros(jitter.below(span)));
        let _ = child.kill(); // SIGKILL on Unix; fails only if it already exited.
        let status = child
            .wait()
            .map_err(|e| format!("round {round}: waiting for the writer: {e}"))?;
        let ids = reader
            .join()
            .map_err(|_| "the output reader panicked".to_owned())?;
        if status.success() {
            return Err(format!(
                "round {round}: the writer exited on its own; it must write until killed"
            ));
        }
        if status.code().is_some() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!(
                "round {round}: the writer failed before it was killed ({status}): {err}"
            ));
        }
        acked.extend(ids);
    }
    Ok(acked)
}

/// The file whose creation releases writers started by [`run_writers`].
const START_FILE: &str = "start";

/// In a writer started by [`run_writers`]: blocks until every writer has been started,
/// so that they really contend.
pub fn wait_for_start(dir: &Path) {
    while !dir.join(START_FILE).exists() {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `writers` processes of the current test binary at once (running only
/// `test_name`, with `role_var` set to `dir`), lets them run to the end, and returns
/// every id they acknowledged.
///
/// # Errors
/// A writer that could not be started or that failed; the error holds its output.
pub fn run_writers(
    test_name: &str,
    role_var: &str,
    dir: &Path,
    writers: usize,
) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let mut children = Vec::new();
    for _ in 0..writers {
        children.push(
            Command::new(&exe)
                .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
                .env(role_var, dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start a writer: {e}"))?,
        );
    }
    std::fs::write(dir.join(START_FILE), b"")
        .map_err(|e| format!("cannot release the writers: {e}"))?;
    let mut acked = Vec::new();
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for a writer: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "a writer failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // libtest may print its own text on the line of the first ack.
        acked.extend(
            stdout
                .lines()
                .filter_map(|l| l.split_once("acked ").map(|(_, id)| id.trim().to_owned())),
        );
    }
    Ok(acked)
}
