//! A local copy of one object, kept in step with it: open (download), use, persist
//! (upload only over the version downloaded), close.
//!
//! The transfer is whole-file both ways, so this suits objects up to some tens of
//! megabytes (a metrics database of a CI pipeline, a small team's run logs), where a
//! download and an upload per unit of work cost less than running a server. Two
//! writers never lose each other's work: the second persist finds the object changed
//! and fails with `PreconditionFailed`, keeping its local copy, and the host opens the
//! object again and redoes its work (`storage_wiring`'s remote SQLite helper does so).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use storage_ports::{Error, Result};

use crate::bucket::{Bucket, ObjectVersion};
use crate::location::ObjectLocation;

/// An open local copy of the object at a location.
#[derive(Debug)]
pub struct RemoteFile {
    bucket: Bucket,
    at: ObjectLocation,
    dir: PathBuf,
    local: PathBuf,
    /// The object's version when downloaded or last persisted; `None` when there was
    /// no object, so the first persist creates it.
    seen: Option<ObjectVersion>,
}

fn io(e: &std::io::Error, what: &str, path: &Path) -> Error {
    Error::unavailable(format!("{what} {}: {e}", path.display()))
}

impl RemoteFile {
    /// Downloads the object at `at` (or notes that there is none) into a new private
    /// directory under `cache`.
    ///
    /// # Errors
    /// `Unavailable` when the service or the cache directory fails; a permanent error
    /// for refused credentials.
    pub async fn open(bucket: Bucket, at: ObjectLocation, cache: &Path) -> Result<Self> {
        let name = at.key().rsplit('/').next().unwrap_or("object").to_owned();
        let dir = cache.join(format!("{}-{}", bucket.name(), uuid::Uuid::now_v7()));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io(&e, "cannot create the cache directory", &dir))?;
        private(&dir).await?;
        let local = dir.join(name);
        let seen = match bucket.get(&at).await? {
            Some(object) => {
                tokio::fs::write(&local, &object.bytes)
                    .await
                    .map_err(|e| io(&e, "cannot write the downloaded copy", &local))?;
                Some(object.version)
            }
            None => None,
        };
        tracing::debug!(object = %at, existed = seen.is_some(), "opened a remote file");
        Ok(Self {
            bucket,
            at,
            dir,
            local,
            seen,
        })
    }

    /// The local copy's path (it may not exist yet when the object did not).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.local
    }

    /// The object's location.
    #[must_use]
    pub fn location(&self) -> &ObjectLocation {
        &self.at
    }

    /// Whether the object existed when opened (or has been persisted since).
    #[must_use]
    pub fn existed(&self) -> bool {
        self.seen.is_some()
    }

    /// Uploads the file at `from` as the object: over the version this copy saw
    /// (`If-Match`), or as a new object when there was none (`If-None-Match: *`).
    ///
    /// # Errors
    /// `PreconditionFailed`, naming the object, when someone else wrote it since it
    /// was opened: nothing is overwritten and the local copy is kept. `Unavailable`.
    pub async fn persist_from(&mut self, from: &Path) -> Result<()> {
        let bytes = Bytes::from(
            tokio::fs::read(from)
                .await
                .map_err(|e| io(&e, "cannot read", from))?,
        );
        let version = self.put(bytes).await?;
        tracing::debug!(object = %self.at, "persisted a remote file");
        self.seen = Some(version);
        Ok(())
    }

    #[cfg(not(feature = "unconditional-persist"))]
    async fn put(&self, bytes: Bytes) -> Result<ObjectVersion> {
        match &self.seen {
            Some(seen) => self.bucket.put_over(&self.at, bytes, seen).await,
            None => self.bucket.put_new(&self.at, bytes).await,
        }
    }

    #[cfg(feature = "unconditional-persist")]
    async fn put(&self, bytes: Bytes) -> Result<ObjectVersion> {
        self.bucket.put_anyway(&self.at, bytes).await
    }

    /// Uploads the local copy itself; see [`Self::persist_from`].
    ///
    /// # Errors
    /// As [`Self::persist_from`].
    pub async fn persist(&mut self) -> Result<()> {
        let local = self.local.clone();
        self.persist_from(&local).await
    }

    /// Removes the local copy and its directory. What was not persisted is lost.
    ///
    /// # Errors
    /// `Unavailable` when the directory cannot be removed.
    pub async fn close(self) -> Result<()> {
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&e, "cannot remove the cache directory", &self.dir)),
        }
    }
}

/// Only the owner may read the copy: it may hold what the bucket's policy protects.
async fn private(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(|e| io(&e, "cannot make the cache directory private", dir))?;
    }
    Ok(())
}
