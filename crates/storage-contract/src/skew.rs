//! Engine nodes whose clocks are off, sharing one server (PostgreSQL, Redis): every
//! queue decision must take the server's time.
//!
//! A second process of the calling test binary runs under libfaketime, its wall clock
//! 10 minutes ahead or behind, and acts as another node. These must hold:
//!
//! - ahead, it takes no live lease and sees no delayed job early;
//! - ahead, a delay it asks for is counted on the server's clock;
//! - behind, a job it enqueues is due at once for everyone;
//! - ahead, its heartbeat extends a lease by the server's clock, not its own.
//!
//! The child reports its clock, so the test cannot pass with a clock that was not
//! skewed. A backend's test binary calls [`skewed_nodes_decide_nothing`] from a test
//! named as `test_name` says; the same call runs the child's side when the binary is
//! started again as the skewed node.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use storage_ports::{
    Dequeue, JobId, JobQueue, JobQueueExt as _, Lease, NewJob, QueueName, TenantId, Timestamp,
};

use crate::servers::{fresh_tenant, server_env};

/// The variable that tells a re-run binary which node's part it plays.
const ROLE: &str = "FLOWSTORE_SKEW_ROLE";

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// The whole skew check against `queue`, from the test `test_name` of the current
/// binary (which is run again, skewed, for the other node's part).
///
/// # Errors
/// What failed, with what the skewed node printed; a missing libfaketime names the
/// command that provides it.
pub async fn skewed_nodes_decide_nothing(queue: &dyn JobQueue, test_name: &str) -> Outcome {
    if let Ok(role) = std::env::var(ROLE) {
        return child(queue, &role).await;
    }
    let s = queue;
    let t = fresh_tenant()?;
    let (q, q2, q3) = (
        QueueName::new("skew")?,
        QueueName::new("skew-behind")?,
        QueueName::new("skew-delay")?,
    );
    let base = |queue: &QueueName| {
        vec![
            ("SKEW_TENANT", t.as_str().to_owned()),
            ("SKEW_QUEUE", queue.as_str().to_owned()),
        ]
    };
    let minutes = |n: u64| Duration::from_secs(60 * n);
    let node = |offset: &str, role: &str, vars: &[(&str, String)]| {
        skewed_node(test_name, offset, role, vars)
    };

    // This node holds a live lease for a minute; another job is due in five minutes.
    s.enqueue(&t, &q, NewJob::new(json!({"n": 1}))).await?;
    let held = s.dequeue(&t, &q, Dequeue::one(minutes(1))).await?;
    let held = held
        .first()
        .ok_or("this node leased nothing")?
        .lease
        .clone();
    s.enqueue(&t, &q, NewJob::new(json!({"n": 2})).with_delay(minutes(5)))
        .await?;

    // Ten minutes ahead: to its clock the lease expired and the job is due; neither is.
    let before = Timestamp::now();
    let out = node("+10m", "dequeue", &base(&q))?;
    let clock = Timestamp::from_micros(said(&out, "clock")?);
    if clock.since(before) < minutes(9) {
        return Err(format!("the node's clock was not ahead: {out}").into());
    }
    if said(&out, "leased")? != 0 {
        return Err(format!("a node ahead took a live lease or an early job: {out}").into());
    }

    // Ahead, its heartbeat extends by the server's clock: about 30 s from now.
    let mut vars = base(&q);
    vars.push(("SKEW_JOB", held.job_id.as_str().to_owned()));
    vars.push(("SKEW_TOKEN", held.token.to_string()));
    let out = node("+10m", "heartbeat", &vars)?;
    let expires = Timestamp::from_micros(said(&out, "expires")?);
    let now = Timestamp::now();
    if expires > now.plus(Duration::from_secs(45)) || expires < now.plus(Duration::from_secs(15)) {
        return Err(format!(
            "a heartbeat of 30 s from a node ahead set the expiry to {expires}, now is {now}"
        )
        .into());
    }

    // Ahead, a delay of two minutes is two minutes of the server's clock, not due now.
    node("+10m", "delay", &base(&q3))?;
    if !s
        .dequeue(&t, &q3, Dequeue::one(minutes(1)))
        .await?
        .is_empty()
    {
        return Err("a delayed job from a node ahead was due at once".into());
    }
    if s.stats(&t, &q3).await?.scheduled != 1 {
        return Err("a delayed job from a node ahead is not scheduled".into());
    }

    // Ten minutes behind: a job it enqueues is due now, not in ten minutes.
    let out = node("-10m", "enqueue", &base(&q2))?;
    let clock = Timestamp::from_micros(said(&out, "clock")?);
    if Timestamp::now().since(clock) < minutes(9) {
        return Err(format!("the node's clock was not behind: {out}").into());
    }
    let got = s.dequeue(&t, &q2, Dequeue::one(minutes(1))).await?;
    let got = got
        .first()
        .ok_or("a job enqueued by a node behind was delayed")?;
    s.ack(&t, &got.lease).await?;
    s.ack(&t, &held).await?;
    Ok(())
}

/// Runs `test_name` of this binary again as a node whose clock is `offset` ("+10m",
/// "-10m") off, in `role`, with `vars`; returns what it printed.
fn skewed_node(
    test_name: &str,
    offset: &str,
    role: &str,
    vars: &[(&str, String)],
) -> Result<String, Box<dyn std::error::Error>> {
    let lib = server_env("FLOWSTORE_TEST_FAKETIME_LIB")?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
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

/// The skewed node's part.
async fn child(s: &dyn JobQueue, role: &str) -> Outcome {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
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
        "delay" => {
            s.enqueue(
                &t,
                &q,
                NewJob::new(json!({"from": "ahead"})).with_delay(Duration::from_secs(120)),
            )
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
