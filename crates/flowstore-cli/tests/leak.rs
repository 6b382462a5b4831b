//! The leak test (C4 end to end): a sentinel secret is stored and read through every
//! layer and the `flowstore` command, with diagnostics at `trace`, on a configuration
//! that spans files, SQLite, PostgreSQL and the OS keyring. Afterwards the sentinel
//! appears nowhere but where it was asked for with `--reveal`: not in any output, log
//! line or error message, not in any file under the data directory (the SQLite
//! database and its WAL included), not in any PostgreSQL table.
//!
//! Needs the servers and the D-Bus keyring session that `cargo xtask test` starts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` and export what it prints")
    })
}

fn flowstore(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstore"))
        .arg("--config")
        .arg(dir.join("flowstore.yaml"))
        .args(args)
        .current_dir(dir)
        .env("FLOWSTORE_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or("").as_bytes())?;
    }
    child.wait_with_output()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files_under(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_sentinel_secret_leaks_nowhere() -> TestResult {
    let pg = env("FLOWSTORE_TEST_POSTGRES_URL")?;
    env("DBUS_SESSION_BUS_ADDRESS")?;
    let dir = std::env::temp_dir().join(format!(
        "flowstore-leak-{}",
        storage_ports::RunId::generate()
    ));
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let tenant = format!("leak{}", &storage_ports::RunId::generate().as_str()[20..]);
    std::fs::write(
        dir.join("flowstore.yaml"),
        format!(
            "workflows: {{ type: fs, path: {d} }}\nruns: {{ type: sqlite, path: {d}/flowstore.db }}\nmetrics: {{ type: sqlite, path: {d}/flowstore.db }}\nqueue: {{ type: postgres, url: \"{pg}\" }}\ndocuments: {{ type: postgres, url: \"{pg}\" }}\ncredentials: {{ type: keyring, store: secret-service }}\n",
            d = data.display()
        ),
    )?;
    let sentinel = format!("SENTINEL-{}", storage_ports::RunId::generate());
    let t = ["--tenant", tenant.as_str()];
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut run = |name: &str, args: &[&str], stdin: Option<&str>| -> std::io::Result<Output> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(t);
        let out = flowstore(&dir, &all, stdin)?;
        outputs.push((name.to_owned(), out.clone()));
        Ok(out)
    };

    let set = run(
        "set",
        &["credentials", "set", "api-key"],
        Some(&format!("{sentinel}\n")),
    )?;
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let refused = run(
        "set with argv",
        &["credentials", "set", "other", &sentinel],
        None,
    )?;
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a value on the command line must be refused"
    );
    for (name, args) in [
        ("get", vec!["credentials", "get", "api-key"]),
        ("get json", vec!["credentials", "get", "api-key", "--json"]),
        ("list", vec!["credentials", "list", "--json"]),
        ("get missing", vec!["credentials", "get", "nope"]),
        ("demo", vec!["demo", "--runs", "20", "--workers", "2"]),
        ("stats", vec!["stats", "--json"]),
        ("health", vec!["health"]),
    ] {
        run(name, &args, None)?;
    }
    let reveal = flowstore(
        &dir,
        &[
            "credentials",
            "get",
            "api-key",
            "--reveal",
            "--tenant",
            &tenant,
        ],
        None,
    )?;
    assert_eq!(
        String::from_utf8_lossy(&reveal.stdout).trim(),
        sentinel,
        "the secret must be stored and read back, or this test proves nothing"
    );
    assert!(
        !contains(&reveal.stderr, &sentinel),
        "--reveal's diagnostics hold the secret"
    );

    for (name, out) in &outputs {
        assert!(
            !contains(&out.stdout, &sentinel),
            "`{name}` printed the secret"
        );
        assert!(
            !contains(&out.stderr, &sentinel),
            "`{name}` logged the secret"
        );
    }
    let traced: usize = outputs.iter().map(|(_, o)| o.stderr.len()).sum();
    assert!(
        traced > 1_000,
        "trace output is missing ({traced} bytes); the log check proves nothing"
    );

    let mut files = Vec::new();
    files_under(&data, &mut files)?;
    assert!(
        files.iter().any(|f| f.ends_with("flowstore.db")),
        "no database: {files:?}"
    );
    for f in &files {
        assert!(
            !contains(&std::fs::read(f)?, &sentinel),
            "{} holds the secret",
            f.display()
        );
    }
    let dump = Command::new("psql")
        .arg(&pg)
        .args(["-Atc", "SELECT string_agg(format('SELECT t::text FROM %I.%I t', table_schema, table_name), ' UNION ALL ') FROM information_schema.tables WHERE table_name LIKE 'flowstore%'"])
        .output()?;
    let union = String::from_utf8_lossy(&dump.stdout).trim().to_owned();
    assert!(
        !union.is_empty(),
        "no flowstore tables in PostgreSQL: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let rows = Command::new("psql")
        .arg(&pg)
        .args(["-Atc", &union])
        .output()?;
    assert!(
        rows.status.success(),
        "{}",
        String::from_utf8_lossy(&rows.stderr)
    );
    assert!(
        rows.stdout.len() > 100,
        "PostgreSQL holds no rows; the table check proves nothing"
    );
    assert!(
        !contains(&rows.stdout, &sentinel),
        "a PostgreSQL table holds the secret"
    );

    let del = flowstore(
        &dir,
        &["credentials", "delete", "api-key", "--tenant", &tenant],
        None,
    )?;
    assert!(del.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
