//! The per-tenant list of keys, kept as one more keyring entry. Its user name,
//! `flowstore index`, has a space, which no credential key may contain (N1), so it can
//! never collide with a key.

use std::collections::BTreeSet;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use storage_ports::{Result, TenantId};

use crate::error::map_keyring_error;

/// The index entry's user name.
pub(crate) const INDEX_USER: &str = "flowstore index";

/// The keyring service of a tenant's credentials.
pub(crate) fn service(tenant: &TenantId) -> String {
    format!("flowstore:{tenant}")
}

/// The entry of one key (or of the index) in a tenant's service.
pub(crate) fn entry(store: &CredentialStore, tenant: &TenantId, user: &str) -> Result<Entry> {
    store
        .build(&service(tenant), user, None)
        .map_err(|e| map_keyring_error(&e, "credentials.entry"))
}

/// Holds the tenant's index for this process and every other on the machine (the CLI
/// beside an engine): an exclusive lock on `flowstore/keyring-<tenant>.lock` in the
/// user's runtime directory (`$XDG_RUNTIME_DIR`, else a private directory under the
/// temp directory). The keyring itself has no transactions, so without it two
/// processes that read, change and write the index at once lose one change. Released
/// when the returned file is dropped.
///
/// # Errors
/// `Unavailable` when the lock file cannot be created or locked.
pub(crate) fn process_lock(tenant: &TenantId) -> Result<std::fs::File> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("flowstore"),
        None => std::env::temp_dir().join(format!(
            "flowstore-{}",
            std::env::var("USER").unwrap_or_else(|_| "user".into())
        )),
    };
    let fail = |what: &str, e: std::io::Error| {
        storage_ports::Error::unavailable(format!(
            "cannot {what} the credential index lock in {}: {e}",
            dir.display()
        ))
    };
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).map_err(|e| fail("create", e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("keyring-{tenant}.lock")))
        .map_err(|e| fail("open", e))?;
    file.lock().map_err(|e| fail("take", e))?;
    Ok(file)
}

/// The keys the index lists; a damaged index counts as empty (it is repaired from the
/// store by the next `list`).
pub(crate) fn read(store: &CredentialStore, tenant: &TenantId) -> Result<BTreeSet<String>> {
    match entry(store, tenant, INDEX_USER)?.get_password() {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(%tenant, error = %e, "the credential index is damaged; rebuilding it");
            BTreeSet::new()
        })),
        Err(KeyringError::NoEntry) => Ok(BTreeSet::new()),
        Err(e) => Err(map_keyring_error(&e, "credentials.index")),
    }
}

/// Replaces the index.
pub(crate) fn write(
    store: &CredentialStore,
    tenant: &TenantId,
    keys: &BTreeSet<String>,
) -> Result<()> {
    let text = serde_json::to_string(keys).map_err(|e| {
        storage_ports::Error::backend(format!("cannot serialize the credential index: {e}"))
    })?;
    entry(store, tenant, INDEX_USER)?
        .set_password(&text)
        .map_err(|e| map_keyring_error(&e, "credentials.index"))
}
