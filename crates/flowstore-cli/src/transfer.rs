//! `flowstore transfer --from A.yaml --to B.yaml [--tenants a,b]`: copies every concern
//! both configurations keep, verifies counts and digests, and prints a report per
//! tenant and concern. Rerun it after an interruption: records already copied are
//! skipped, and the rest is copied.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use storage_ports::TenantId;
use storage_wiring::transfer::{totals, transfer as run_transfer};
use storage_wiring::{Storage, StorageConfig, TransferError};

use crate::cli::TransferArgs;
use crate::commands::{emit, Ctx, Failure, Out};

async fn open(path: &std::path::Path) -> Result<Storage, Failure> {
    let path = path.display();
    let text = std::fs::read_to_string(path.to_string())
        .map_err(|e| Failure::Invalid(format!("cannot read {path}: {e}")))?;
    let config =
        StorageConfig::from_yaml(&text).map_err(|e| Failure::Invalid(format!("{path}: {e}")))?;
    Storage::build(&config)
        .await
        .map_err(|e| Failure::Other(format!("{path}: {e}")))
}

/// `flowstore transfer`.
pub async fn transfer(ctx: &Ctx, args: TransferArgs) -> Out {
    let tenants: Vec<TenantId> = args
        .tenants
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| TenantId::new(t.as_str()))
        .collect::<Result<_, _>>()?;
    let tenants = (!tenants.is_empty()).then_some(tenants);
    let (src, dst) = (open(&args.from).await?, open(&args.to).await?);
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_draw = Instant::now();
    let mut progress = |t: &TenantId, concern: &str, n: u64| {
        if tty && last_draw.elapsed().as_millis() >= 100 {
            last_draw = Instant::now();
            #[allow(clippy::cast_precision_loss)]
            let rate = n as f64 / started.elapsed().as_secs_f64().max(0.001);
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[2K{t}: {concern} {n} copied ({rate:.0}/s)"
            );
        }
    };
    let result = run_transfer(&src, &dst, tenants, &mut progress).await;
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    let report = result.map_err(|e| match e {
        TransferError::Tenants { .. } => Failure::Invalid(e.to_string()),
        other => Failure::Other(other.to_string()),
    })?;
    emit(ctx, &report, || {
        let mut out = String::new();
        for t in &report.tenants {
            out.push_str(&format!("tenant {}\n", t.tenant));
            out.push_str(&format!(
                "  {:<16} {:>9} {:>9} {:>9}  {}\n",
                "concern", "copied", "present", "verified", "digest"
            ));
            for (concern, d) in &t.verified {
                let copied = t.copied.written.get(*concern).copied().unwrap_or(0);
                let present = t.copied.already_present.get(*concern).copied().unwrap_or(0);
                out.push_str(&format!(
                    "  {concern:<16} {copied:>9} {present:>9} {:>9}  {}\n",
                    d.count,
                    d.digest.get(..16).unwrap_or(&d.digest)
                ));
            }
        }
        let sum: Vec<String> = totals(&report)
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        out.push_str(&format!(
            "copied {} tenants in {:.1}s, every count and digest identical on both sides: {}",
            report.tenants.len(),
            started.elapsed().as_secs_f64(),
            sum.join(", ")
        ));
        if !report.skipped.is_empty() {
            out.push_str(&format!(
                "\nnot copied (the destination does not keep them): {}",
                report.skipped.join(", ")
            ));
        }
        out
    });
    Ok(())
}
