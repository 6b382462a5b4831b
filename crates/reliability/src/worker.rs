//! One chaos worker process: leases jobs, records each side effect in its own file
//! (job, fencing token, when the lease began and ends, by the backend's clock), then
//! acknowledges them. It may be killed at any point; the file is append-only, so a
//! kill leaves at most one torn last line, which the check skips.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use storage_ports::{Dequeue, QueueName, TenantId};

/// How long a lease lasts: a killed worker's jobs come back after this.
pub const LEASE: Duration = Duration::from_secs(3);

/// `worker <backend> <tenant> <queue> <effects file> <sqlite file>`.
///
/// # Errors
/// Bad arguments or an unwritable file; backend errors are retried (the server may be
/// restarting).
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let [backend, tenant, queue, out, sqlite] = args else {
        anyhow::bail!("worker <backend> <tenant> <queue> <effects file> <sqlite file>");
    };
    // A worker started while the server restarts waits for it, as an engine would.
    let started = std::time::Instant::now();
    let store = loop {
        match crate::backend::open(backend, &PathBuf::from(sqlite)).await {
            Ok(s) => break s,
            Err(e) if started.elapsed() > Duration::from_secs(60) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let (t, q) = (
        TenantId::new(tenant.clone())?,
        QueueName::new(queue.clone())?,
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("opening {out}"))?;
    let lease_us = i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX);
    loop {
        let jobs = match store.dequeue(&t, &q, Dequeue::batch(10, LEASE)).await {
            Ok(j) => j,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            match storage_ports::JobQueue::stats(&*store, &t, &q).await {
                Ok(s) if s.pending + s.scheduled + s.running == 0 => return Ok(()),
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let mut lines = String::new();
        for j in &jobs {
            let ends = j.lease.expires_at.as_micros();
            lines.push_str(&format!(
                "effect {} {} {} {}\n",
                j.lease.job_id,
                j.lease.token,
                ends - lease_us,
                ends
            ));
        }
        file.write_all(lines.as_bytes())?;
        let leases: Vec<_> = jobs.into_iter().map(|j| j.lease).collect();
        let Ok(acks) = store.ack_batch(&t, &leases).await else {
            continue;
        };
        let mut lines = String::new();
        for (l, r) in leases.iter().zip(acks) {
            if r.is_ok() {
                lines.push_str(&format!("acked {} {}\n", l.job_id, l.token));
            }
        }
        file.write_all(lines.as_bytes())?;
    }
}
