//! Backups of one tenant's whole store (issue 16): `backup` copies every concern
//! through the ports into a SQLite database and writes it with a manifest of counts
//! and digests, into a directory or a bucket; `restore` reads one back, checks it
//! against its manifest, loads it into any configured storage and checks that too.
//!
//! A backup holds workflows, runs (with steps and events), metrics, pending and dead
//! jobs and documents. Credentials are never in a backup: they live in the OS
//! keyring only, and are backed up with it.
//!
//! In a bucket each object is written with `If-None-Match: *`, so a backup is never
//! overwritten, and the manifest is written last: a backup without its manifest is
//! incomplete, and `restore` refuses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use adapter_sqlite::SqliteStore;
use serde::{Deserialize, Serialize};
use storage_objects::{Bucket, ObjectLocation, ObjectStoreConfig};
use storage_ports::transfer::{digest_tenant, ConcernDigest, Concerns};
use storage_ports::{Error, Result, TenantId, Timestamp};

use crate::transfer::{transfer, TransferError};
use crate::Storage;

const DATABASE: &str = "backup.db";
const MANIFEST: &str = "manifest.json";

/// What a backup holds, written beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    /// The manifest's format (1).
    pub format: u32,
    /// The tenant backed up.
    pub tenant: String,
    /// When the backup was taken (RFC 3339).
    pub taken_at: String,
    /// Count and SHA-256 digest per concern, as the source had them.
    pub concerns: BTreeMap<String, ConcernDigest>,
    /// Concerns the source keeps that a backup cannot hold (none today).
    pub skipped: Vec<String>,
}

/// Where a backup went and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The backup's directory or object prefix.
    pub location: String,
    /// Its manifest.
    pub manifest: BackupManifest,
}

fn transfer_error(e: TransferError) -> Error {
    match e {
        TransferError::Mismatch { tenant, concerns } => Error::corrupt(format!(
            "tenant {tenant}: the copy differs from its source in {concerns:?}"
        )),
        other => Error::backend(other.to_string()),
    }
}

fn io(e: &std::io::Error, what: &str, path: &Path) -> Error {
    Error::unavailable(format!("{what} {}: {e}", path.display()))
}

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("flowstore-backup-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).map_err(|e| io(&e, "cannot create", &dir))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Backs up `tenant` of `from` to `to`: a directory, or `s3://bucket/prefix/` (the
/// object store from `objects`). The backup is a new directory or prefix named
/// `flowstore-backup-<tenant>-<time>` holding `backup.db` and `manifest.json`.
///
/// # Errors
/// `PreconditionFailed` when the backup's objects exist already; `CorruptData` when
/// the copy differs from the source; the backends' and the object store's errors.
pub async fn backup(
    from: &Storage,
    tenant: &TenantId,
    to: &str,
    objects: &ObjectStoreConfig,
) -> Result<BackupReport> {
    let scratch = Scratch::new()?;
    let db = SqliteStore::open(scratch.0.join("copy.db")).await?;
    let copy = Storage::from_set(db.store_set());
    let report = transfer(from, &copy, Some(vec![tenant.clone()]), &mut |_, _, _| {})
        .await
        .map_err(transfer_error)?;
    let verified = report
        .tenants
        .first()
        .map(|t| t.verified.clone())
        .unwrap_or_default();
    let manifest = BackupManifest {
        format: 1,
        tenant: tenant.as_str().to_owned(),
        taken_at: Timestamp::now().to_string(),
        concerns: verified
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        skipped: report.skipped.iter().map(|s| (*s).to_owned()).collect(),
    };
    let snapshot = scratch.0.join(DATABASE);
    db.snapshot_to(&snapshot).await?;
    db.close().await;
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::backend(format!("manifest: {e}")))?;
    let name = format!(
        "flowstore-backup-{}-{}",
        tenant.as_str(),
        Timestamp::now().as_micros()
    );
    let location = if ObjectLocation::is_object_url(to) {
        let at = ObjectLocation::parse(to)?.join(&name);
        let bucket = Bucket::open(objects, at.bucket())?;
        let bytes = tokio::fs::read(&snapshot)
            .await
            .map_err(|e| io(&e, "cannot read", &snapshot))?;
        bucket.put_new(&at.join(DATABASE), bytes.into()).await?;
        bucket
            .put_new(&at.join(MANIFEST), manifest_json.into())
            .await?;
        format!("{at}/")
    } else {
        let dir = Path::new(to).join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| io(&e, "cannot create", &dir))?;
        std::fs::copy(&snapshot, dir.join(DATABASE))
            .map_err(|e| io(&e, "cannot write", &dir.join(DATABASE)))?;
        durable_write(&dir.join(MANIFEST), &manifest_json)?;
        dir.display().to_string()
    };
    Ok(BackupReport { location, manifest })
}

/// Writes `bytes` to a new file and makes it, and the backup database beside it,
/// durable.
fn durable_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::File::open(dir.join(DATABASE))
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&e, "cannot sync", &dir.join(DATABASE)))?;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io(&e, "cannot create", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io(&e, "cannot write", path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&e, "cannot sync", dir))
}

/// What a restore loaded.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The backup's manifest.
    pub manifest: BackupManifest,
    /// Records written per concern, and found already present (a rerun).
    pub copied: storage_ports::transfer::CopyReport,
    /// Concerns of the backup the destination does not keep, so not loaded.
    pub skipped: Vec<String>,
}

/// Loads the backup at `from` (a backup's directory, or its `s3://.../` prefix)
/// into `to`, after checking the backup against its manifest; then checks that `to`
/// holds the same counts and digests.
///
/// # Errors
/// `NotFound` without a manifest (an incomplete backup); `CorruptData` when the
/// backup or the loaded copy differs from the manifest; the backends' errors.
pub async fn restore(
    to: &Storage,
    from: &str,
    objects: &ObjectStoreConfig,
) -> Result<RestoreReport> {
    let scratch = Scratch::new()?;
    let local = scratch.0.join(DATABASE);
    let manifest_bytes = if ObjectLocation::is_object_url(from) {
        let at = ObjectLocation::parse(from.trim_end_matches('/'))?;
        let bucket = Bucket::open(objects, at.bucket())?;
        let manifest = bucket.get(&at.join(MANIFEST)).await?.ok_or_else(|| {
            Error::not_found(format!(
                "{from} has no {MANIFEST}: not a backup, or an incomplete one"
            ))
        })?;
        let db = bucket
            .get(&at.join(DATABASE))
            .await?
            .ok_or_else(|| Error::not_found(format!("{from} has no {DATABASE}")))?;
        tokio::fs::write(&local, &db.bytes)
            .await
            .map_err(|e| io(&e, "cannot write", &local))?;
        manifest.bytes.to_vec()
    } else {
        let dir = Path::new(from);
        let manifest = std::fs::read(dir.join(MANIFEST)).map_err(|e| {
            Error::not_found(format!(
                "{} cannot be read ({e}): not a backup, or an incomplete one",
                dir.join(MANIFEST).display()
            ))
        })?;
        std::fs::copy(dir.join(DATABASE), &local)
            .map_err(|e| io(&e, "cannot read", &dir.join(DATABASE)))?;
        manifest
    };
    let manifest: BackupManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::corrupt(format!("{from}: the manifest does not read: {e}")))?;
    if manifest.format != 1 {
        return Err(Error::invalid_input(format!(
            "{from}: backup format {} is newer than this flowstore reads (1)",
            manifest.format
        )));
    }
    let tenant = TenantId::new(manifest.tenant.clone())?;
    let db = SqliteStore::open(&local).await?;
    let backup = Storage::from_set(db.store_set());
    let held = digest_tenant(backup.ports(), &tenant, Concerns::ALL).await?;
    for (name, want) in &manifest.concerns {
        if held.get(name.as_str()) != Some(want) {
            return Err(Error::corrupt(format!(
                "{from}: the backup's {name} differ from its manifest; it is damaged"
            )));
        }
    }
    let report = transfer(&backup, to, Some(vec![tenant]), &mut |_, _, _| {})
        .await
        .map_err(transfer_error)?;
    db.close().await;
    let loaded = report.tenants.into_iter().next();
    if let Some(t) = &loaded {
        for (name, got) in &t.verified {
            if manifest.concerns.get(*name) != Some(got) {
                return Err(Error::corrupt(format!(
                    "the restored {name} differ from the manifest of {from}"
                )));
            }
        }
    }
    Ok(RestoreReport {
        manifest,
        copied: loaded.map(|t| t.copied).unwrap_or_default(),
        skipped: report.skipped.iter().map(|s| (*s).to_owned()).collect(),
    })
}
