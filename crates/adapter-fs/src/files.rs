//! Durable file primitives: private directories, atomic replace, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::path::Path;

use storage_ports::{Error, Result};

/// Maps an I/O error on `path` to a storage error.
pub(crate) fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    let err = match e.kind() {
        IoKind::NotFound => Error::not_found(format!("{what}: {} does not exist", path.display())),
        IoKind::WouldBlock | IoKind::Interrupted | IoKind::TimedOut => {
            Error::unavailable(format!("{what} {}: {e}", path.display()))
        }
        _ => Error::backend(format!("{what} {}: {e}", path.display())),
    };
    err.with_context("path", path.display())
}

/// The error for a file that exists but cannot be trusted (W10): names the path and why.
pub(crate) fn corrupt(path: &Path, why: &str) -> Error {
    Error::corrupt(format!("{} is damaged: {why}", path.display()))
        .with_context("path", path.display())
}

/// Reads `path` as JSON of type `T`: `NotFound` as such, anything unparsable `CorruptData`.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| io_error("reading", path, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| corrupt(path, &e.to_string()))
}

/// Serializes `value` as pretty JSON followed by a newline.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::invalid_input(format!("cannot serialize: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Creates `dir` and its parents, private to the user (0700 on Unix).
///
/// Durably: each directory it creates is flushed into its parent (fsync of the
/// parent), so a crash cannot lose a directory that files were then written into.
/// Directories that exist cost one `stat`.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.is_dir())
        .collect();
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    for d in missing.into_iter().rev() {
        match b.create(d) {
            Ok(()) => {}
            // Another writer created it meanwhile: the same outcome.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(io_error("creating directory", d, &e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Flushes a directory entry change (create, rename, unlink) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing directory", dir, &e))
}

/// Writes `bytes` to `path` atomically and durably: unique temp file in the same
/// directory, fsync, rename over `path`, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::backend(format!("{} has no parent directory", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("writing", path, &e));
    }
    sync_dir(dir)
}

/// Removes `path` durably.
pub(crate) fn remove_durable(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(|e| io_error("removing", path, &e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// An exclusive advisory lock on `path` (created if missing), held until dropped.
pub(crate) fn lock_exclusive(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error("opening lock", path, &e))?;
    f.lock().map_err(|e| io_error("locking", path, &e))?;
    Ok(f)
}
