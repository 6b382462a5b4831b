//! Moving a store to other backends (O4 for operators): `flowstore transfer --from A
//! --to B` and hosts call [`transfer`].
//!
//! Every concern both sides keep is copied through the ports alone
//! ([`copy_tenant_with_progress`]), so any pair of backends works, then verified: the
//! count and content digest of each concern must be the same on both sides. Copying is
//! idempotent (a record already present with the same content is skipped), so a
//! transfer that was interrupted, even killed, is completed by running it again.
//! Credentials are not copied: they live in the OS keyring, which both sides share.

use std::collections::BTreeMap;

use serde::Serialize;
use storage_ports::transfer::{
    copy_tenant_with_progress, digest_tenant, Concerns, CopyReport, TenantDigest,
};
use storage_ports::TenantId;

use crate::Storage;

/// Why a transfer stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The source cannot list its tenants (Redis never scans its keys): name them.
    #[error("the source cannot list its tenants ({source}); name them with --tenants a,b")]
    Tenants {
        /// Why.
        source: storage_ports::Error,
    },
    /// Copying or reading failed.
    #[error("tenant {tenant}: {source}")]
    Copy {
        /// The tenant being copied.
        tenant: TenantId,
        /// Why.
        source: storage_ports::Error,
    },
    /// The copy finished but differs from the source.
    #[error("tenant {tenant}: the copy differs from the source in {concerns:?}; run the transfer again, and if it persists report it")]
    Mismatch {
        /// The tenant.
        tenant: TenantId,
        /// Concerns whose count or digest differ.
        concerns: Vec<String>,
    },
}

/// What happened to one tenant.
#[derive(Debug, Clone, Serialize)]
pub struct TenantTransfer {
    /// The tenant.
    pub tenant: TenantId,
    /// Records written, and records found already present (a resumed transfer).
    pub copied: CopyReport,
    /// Count and digest per concern, identical on both sides.
    pub verified: TenantDigest,
}

/// What a transfer did.
#[derive(Debug, Clone, Serialize)]
pub struct TransferReport {
    /// Per tenant.
    pub tenants: Vec<TenantTransfer>,
    /// Concerns the source keeps and the destination does not, so not copied.
    pub skipped: Vec<&'static str>,
}

/// Copies `tenants` (or every tenant the source lists) from `from` to `to`, then
/// verifies every concern by count and digest. `progress(tenant, concern, done)` is
/// called as records are copied.
///
/// # Errors
/// [`TransferError`] naming the tenant and what failed.
pub async fn transfer(
    from: &Storage,
    to: &Storage,
    tenants: Option<Vec<TenantId>>,
    progress: &mut (dyn FnMut(&TenantId, &str, u64) + Send),
) -> Result<TransferReport, TransferError> {
    let (src, dst) = (from.ports(), to.ports());
    let tenants = match tenants {
        Some(t) => t,
        None => src
            .operations
            .tenants()
            .await
            .map_err(|source| TransferError::Tenants { source })?,
    };
    let concerns = Concerns::shared(src, dst);
    let have = src.capabilities();
    let skipped = [
        ("workflows", have.workflows && !concerns.workflows),
        ("runs", have.runs && !concerns.runs),
        ("metrics", have.metrics && !concerns.metrics),
        ("queue", have.queue && !concerns.queue),
        ("documents", have.documents && !concerns.documents),
    ]
    .into_iter()
    .filter_map(|(name, skip)| skip.then_some(name))
    .collect();
    let mut out = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let fail = |source| TransferError::Copy {
            tenant: tenant.clone(),
            source,
        };
        let copied =
            copy_tenant_with_progress(src, &tenant, dst, &tenant, concerns, &mut |c, n| {
                progress(&tenant, c, n);
            })
            .await
            .map_err(fail)?;
        let (a, b) = (
            digest_tenant(src, &tenant, concerns).await.map_err(fail)?,
            digest_tenant(dst, &tenant, concerns).await.map_err(fail)?,
        );
        let differ: Vec<String> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, _)| (*k).to_owned())
            .collect();
        if !differ.is_empty() {
            return Err(TransferError::Mismatch {
                tenant,
                concerns: differ,
            });
        }
        out.push(TenantTransfer {
            tenant,
            copied,
            verified: a,
        });
    }
    Ok(TransferReport {
        tenants: out,
        skipped,
    })
}

/// Records per concern over all tenants, for a summary line.
#[must_use]
pub fn totals(report: &TransferReport) -> BTreeMap<&'static str, u64> {
    let mut t = BTreeMap::new();
    for m in &report.tenants {
        for (k, d) in &m.verified {
            *t.entry(*k).or_default() += d.count;
        }
    }
    t
}
