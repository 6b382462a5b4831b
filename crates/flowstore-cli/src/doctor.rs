//! `flowstore doctor`: checks every configured backend and says in plain words what is
//! wrong and how to fix it: reachable or not, schema version, whether the backend keeps
//! the concerns it was given, what it holds for the tenant, and caveats (memory keeps
//! nothing; kernel keyutils loses credentials at reboot).

use serde::Serialize;
use storage_ports::{Capabilities, ErrorKind};
use storage_wiring::{Concern, Storage};

use crate::commands::{emit, Ctx, Failure, Out};

/// One backend's findings.
#[derive(Debug, Serialize)]
struct Finding {
    backend: String,
    concerns: Vec<&'static str>,
    reachable: bool,
    detail: String,
    schema: String,
    counts: String,
    problems: Vec<String>,
    notes: Vec<String>,
}

fn keeps(c: &Capabilities, concern: Concern) -> bool {
    match concern {
        Concern::Workflows => c.workflows,
        Concern::Runs => c.runs,
        Concern::Metrics => c.metrics,
        Concern::Credentials => c.credentials,
        Concern::Queue => c.queue,
        Concern::Documents => c.documents,
    }
}

/// `flowstore doctor`.
pub async fn doctor(storage: &Storage, ctx: &Ctx) -> Out {
    let t = ctx.tenant()?;
    let mut findings = Vec::new();
    for (concerns, ops) in storage.instances() {
        let caps = ops.capabilities();
        let health = ops.health().await;
        let mut f = Finding {
            backend: caps.backend.clone(),
            concerns: concerns.iter().map(|c| c.key()).collect(),
            reachable: health.ok,
            detail: health.detail.clone(),
            schema: String::new(),
            counts: String::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        if !health.ok {
            f.problems.push(format!(
                "{} does not answer (why, above). Start it, or fix its url, path or store in the configuration.",
                caps.backend
            ));
        }
        for c in concerns {
            if !keeps(&caps, *c) {
                f.problems.push(format!(
                    "{} is configured on {}, which does not keep {}; choose another backend for it (docs/configuration.md).",
                    c.key(),
                    caps.backend,
                    c.key()
                ));
            }
        }
        f.schema = match ops.schema().await {
            Ok(s) if s.applied == s.known => format!("schema {} (current)", s.applied),
            Ok(s) if s.applied < s.known => {
                f.problems.push(format!(
                    "schema {} of {}: migrations are applied when the store opens; check the database user may create tables",
                    s.applied, s.known
                ));
                format!("schema {} of {}", s.applied, s.known)
            }
            Ok(s) => {
                f.problems.push(format!(
                    "schema {} is newer than this flowstore knows ({}); upgrade flowstore",
                    s.applied, s.known
                ));
                format!("schema {} (newer than {})", s.applied, s.known)
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => "no schema to migrate".into(),
            Err(e) => {
                f.problems
                    .push(format!("cannot read the schema version: {e}"));
                "unknown".into()
            }
        };
        if health.ok {
            match ops.stats(&t).await {
                Ok(s) => {
                    let held: Vec<String> = concerns
                        .iter()
                        .map(|c| match c {
                            Concern::Workflows => format!(
                                "{} workflows ({} versions)",
                                s.workflows, s.workflow_versions
                            ),
                            Concern::Runs => format!("{} runs", s.runs),
                            Concern::Metrics => format!(
                                "{} metric records, {} patterns",
                                s.metric_records, s.patterns
                            ),
                            Concern::Credentials => format!("{} credentials", s.credentials),
                            Concern::Queue => format!("{} jobs", s.jobs),
                            Concern::Documents => format!("{} documents", s.documents),
                        })
                        .collect();
                    f.counts = format!("tenant {t}: {}", held.join(", "));
                }
                Err(e) => f.problems.push(format!("cannot count what it holds: {e}")),
            }
        }
        if caps.backend == "memory" {
            f.notes
                .push("memory keeps nothing after the process exits: for tests only".into());
        }
        if health.ok && health.detail.contains("keyutils") {
            f.notes.push("kernel keyutils credentials do not survive a reboot; re-provision them at boot, or run a Secret Service (gnome-keyring) and set credentials.store: secret-service".into());
        }
        findings.push(f);
    }
    let problems: usize = findings.iter().map(|f| f.problems.len()).sum();
    emit(ctx, &findings, || {
        let mut out = String::new();
        for f in &findings {
            out.push_str(&format!(
                "{} ({}): {}\n  {}\n  {}\n",
                f.backend,
                f.concerns.join(", "),
                if f.reachable { "ok" } else { "NOT REACHABLE" },
                f.detail,
                f.schema
            ));
            if !f.counts.is_empty() {
                out.push_str(&format!("  {}\n", f.counts));
            }
            for p in &f.problems {
                out.push_str(&format!("  problem: {p}\n"));
            }
            for n in &f.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
        if problems == 0 {
            out.push_str("no problems found");
        } else {
            out.push_str(&format!("{problems} problem(s) found"));
        }
        out
    });
    if problems > 0 {
        return Err(Failure::Other(format!("{problems} problem(s) found")));
    }
    Ok(())
}
