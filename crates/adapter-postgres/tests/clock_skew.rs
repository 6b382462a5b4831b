//! Engine nodes whose clocks are off share one PostgreSQL: every queue decision takes
//! the server's time. A second process of this test binary runs with libfaketime, its
//! wall clock 10 minutes ahead or behind, and acts as another node:
//! - ahead, it takes no live lease and sees no delayed job early;
//! - behind, a job it enqueues is due at once for everyone;
//! - ahead, its heartbeat extends a lease by the server's clock, not its own.
//! The child proves its clock was skewed, so the test cannot pass by accident.

use std::process::Command;
use std::time::Duration;

use adapter_postgres::{Config, PostgresStore};
use serde_json::json;
use storage_contract::servers::{fresh_tenant, server_env};
use storage_ports::{
    Dequeue, JobId, JobQueue, JobQueueExt, Lease, NewJob, QueueName, TenantId, Timestamp,
};

const TEST: &str = "a_node_with_a_skewed_clock_decides_nothing_by_it";
const ROLE: &str = "FLOWSTORE_SKEW_ROLE";

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn store() -> Result<PostgresStore, Box<dyn std::error::Error>> {
    Ok(PostgresStore::connect(&Config::new(server_env("FLOWSTORE_TEST_POSTGRES_URL")?)).await?)
}

/// Runs this test again as a node whose clock is `offset` ("+10m", "-10m") off, in
/// `role`, with `vars`; returns what it printed.
fn skewed_node(
    offset: &str,
    role: &str,
    vars: &[(&str, String)],
) -> Result<String, Box<dyn std::error::Error>> {
    let lib = server_env("FLOWSTORE_TEST_FAKETIME_LIB")?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env("LD_PRELOAD", lib)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env(ROLE, role);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "the skewed node failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(text)
}

/// The value the child printed after `key=`.
fn said(text: &str, key: &str) -> Result<i64, Box<dyn std::error::Error>> {
    // libtest prints the test's name on the same line as the test's first output.
    text.split(&format!("{key}="))
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("the skewed node did not say {key}: {text}").into())
}

async fn child(role: &str) -> TestResult {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let s = store().await?;
    let t = TenantId::new(var("SKEW_TENANT")?)?;
    let q = QueueName::new(var("SKEW_QUEUE")?)?;
    println!("clock={}", Timestamp::now().as_micros());
    match role {
        "dequeue" => {
            let got = s
                .dequeue(&t, &q, Dequeue::batch(10, Duration::from_secs(30)))
                .await?;
            println!("leased={}", got.len());
        }
        "enqueue" => {
            s.enqueue(&t, &q, NewJob::new(json!({"from": "behind"})))
                .await?;
            println!("enqueued=1");
        }
        "heartbeat" => {
            let lease = Lease {
                queue: q,
                job_id: JobId::new(var("SKEW_JOB")?)?,
                token: var("SKEW_TOKEN")?.parse()?,
                expires_at: Timestamp::now(),
            };
            let extended = s.heartbeat(&t, &lease, Duration::from_secs(30)).await?;
            println!("expires={}", extended.expires_at.as_micros());
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn a_node_with_a_skewed_clock_decides_nothing_by_it() -> TestResult {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role).await;
    }
    let s = store().await?;
    let t = fresh_tenant()?;
    let (q, q2) = (QueueName::new("skew")?, QueueName::new("skew-behind")?);
    let base = |queue: &QueueName| {
        vec![
            ("SKEW_TENANT", t.as_str().to_owned()),
            ("SKEW_QUEUE", queue.as_str().to_owned()),
        ]
    };
    let minutes = |n: u64| Duration::from_secs(60 * n);

    // This node holds a live lease for a minute; another job is due in five minutes.
    s.enqueue(&t, &q, NewJob::new(json!({"n": 1}))).await?;
    let held = s.dequeue(&t, &q, Dequeue::one(minutes(1))).await?;
    let held = held
        .first()
        .ok_or("this node leased nothing")?
        .lease
        .clone();
    s.enqueue(
        &t,
        &q,
        NewJob::new(json!({"n": 2})).with_run_at(Timestamp::now().plus(minutes(5))),
    )
    .await?;

    // Ten minutes ahead: to its clock the lease expired and the job is due; neither is.
    let before = Timestamp::now();
    let out = skewed_node("+10m", "dequeue", &base(&q))?;
    let clock = Timestamp::from_micros(said(&out, "clock")?);
    assert!(
        clock.since(before) >= minutes(9),
        "the node's clock was not ahead: {out}"
    );
    assert_eq!(
        said(&out, "leased")?,
        0,
        "a node ahead took a live lease or an early job"
    );

    // Ahead, its heartbeat extends by the server's clock: about 30 s from now.
    let mut vars = base(&q);
    vars.push(("SKEW_JOB", held.job_id.as_str().to_owned()));
    vars.push(("SKEW_TOKEN", held.token.to_string()));
    let out = skewed_node("+10m", "heartbeat", &vars)?;
    let expires = Timestamp::from_micros(said(&out, "expires")?);
    assert!(
        expires <= Timestamp::now().plus(Duration::from_secs(45)),
        "a heartbeat from a node ahead extended the lease by its own clock: {expires}"
    );
    assert!(
        expires >= Timestamp::now().plus(Duration::from_secs(15)),
        "{expires}"
    );

    // Ten minutes behind: a job it enqueues is due now, not in ten minutes.
    let out = skewed_node("-10m", "enqueue", &base(&q2))?;
    let clock = Timestamp::from_micros(said(&out, "clock")?);
    assert!(
        Timestamp::now().since(clock) >= minutes(9),
        "the node's clock was not behind: {out}"
    );
    let got = s.dequeue(&t, &q2, Dequeue::one(minutes(1))).await?;
    assert_eq!(got.len(), 1, "a job enqueued by a node behind was delayed");

    s.ack(&t, &got[0].lease).await?;
    Ok(())
}
