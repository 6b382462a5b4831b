//! A SQLite database that lives in a bucket (issue 16): the seed unentropy's
//! `sqlite-s3` provider, without its lost updates.
//!
//! The lifecycle is explicit: [`RemoteSqlite::open`] downloads the database into a
//! private cache directory and opens it as usual; [`RemoteSqlite::persist`] uploads a
//! consistent copy only over the version it downloaded (`If-Match`), or as a new
//! object (`If-None-Match: *`); [`RemoteSqlite::close`] removes the local copy. When
//! another writer persisted first, persist fails with `PreconditionFailed` naming the
//! object, and nothing is overwritten. [`with_remote_sqlite`] runs a host's unit of
//! work that way and, when it loses such a race, downloads again and runs it again.
//!
//! Whole-file transfer both ways: it suits databases up to some tens of megabytes
//! written by a few writers at a time (CI jobs recording their metrics), not a busy
//! shared store, which belongs on PostgreSQL.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adapter_sqlite::SqliteStore;
use storage_objects::{Bucket, ObjectLocation, ObjectStoreConfig, RemoteFile};
use storage_ports::{ErrorKind, Result, StoreSet};

/// An open SQLite database whose home is an object.
#[derive(Debug)]
pub struct RemoteSqlite {
    file: RemoteFile,
    store: SqliteStore,
    snapshots: u32,
    /// The digest of the database's snapshot as last downloaded or uploaded: a
    /// persist that would upload the same bytes uploads nothing.
    baseline: [u8; 32],
}

/// What a persist did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    /// The database was uploaded.
    Uploaded,
    /// Nothing changed since the last download or upload: nothing was sent (so a
    /// read-only command never races a writer, and never creates the object).
    Unchanged,
}

impl RemoteSqlite {
    /// Downloads the database at `at` (an absent object is a new, empty database)
    /// into a private directory under `cache`, and opens it (applying migrations).
    ///
    /// # Errors
    /// `Unavailable` when the object store or the cache fails; `InvalidInput` for a
    /// database written by a newer flowstore; a permanent error for refused credentials.
    pub async fn open(
        config: &ObjectStoreConfig,
        at: &ObjectLocation,
        cache: &Path,
    ) -> Result<Self> {
        let bucket = Bucket::open(config, at.bucket())?;
        let file = RemoteFile::open(bucket, at.clone(), cache).await?;
        let store = match SqliteStore::open(file.path()).await {
            Ok(s) => s,
            Err(e) => {
                let _ = file.close().await;
                return Err(e);
            }
        };
        let mut me = Self {
            file,
            store,
            snapshots: 0,
            baseline: [0; 32],
        };
        let (snapshot, digest) = me.snapshot().await?;
        let _ = tokio::fs::remove_file(&snapshot).await;
        me.baseline = digest;
        Ok(me)
    }

    /// The same database with `limit` on every payload it writes (N4).
    #[must_use]
    pub fn with_payload_limit(mut self, limit: storage_ports::PayloadLimit) -> Self {
        self.store = self.store.with_payload_limit(limit);
        self
    }

    /// A consistent copy of the database beside it, and its digest.
    async fn snapshot(&mut self) -> Result<(PathBuf, [u8; 32])> {
        use sha2::Digest as _;
        self.snapshots += 1;
        let snapshot = snapshot_path(self.file.path(), self.snapshots);
        let _ = tokio::fs::remove_file(&snapshot).await;
        self.store.snapshot_to(&snapshot).await?;
        let bytes = tokio::fs::read(&snapshot).await.map_err(|e| {
            storage_ports::Error::unavailable(format!("cannot read {}: {e}", snapshot.display()))
        })?;
        Ok((snapshot, sha2::Sha256::digest(&bytes).into()))
    }

    /// The database's ports.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
        self.store.store_set()
    }

    /// The object the database lives in.
    #[must_use]
    pub fn location(&self) -> &ObjectLocation {
        self.file.location()
    }

    /// Uploads a consistent copy of the database (as of its last commit) over the
    /// version downloaded, or as a new object.
    ///
    /// # Errors
    /// `PreconditionFailed`, naming the object, when another writer persisted since
    /// this copy was opened: nothing was overwritten, the local copy is kept, and the
    /// work must be redone on a fresh download. `Unavailable`.
    pub async fn persist(&mut self) -> Result<Persisted> {
        let (snapshot, digest) = self.snapshot().await?;
        let done = if digest == self.baseline {
            Ok(Persisted::Unchanged)
        } else {
            self.file
                .persist_from(&snapshot)
                .await
                .map(|()| Persisted::Uploaded)
        };
        let _ = tokio::fs::remove_file(&snapshot).await;
        if matches!(done, Ok(Persisted::Uploaded)) {
            self.baseline = digest;
        }
        done
    }

    /// Closes the database and removes the local copy. What was not persisted is lost.
    ///
    /// # Errors
    /// `Unavailable` when the cache directory cannot be removed.
    pub async fn close(self) -> Result<()> {
        self.store.close().await;
        self.file.close().await
    }
}

fn snapshot_path(db: &Path, n: u32) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".snapshot-{n}"));
    db.with_file_name(name)
}

/// Runs `work` on the database at `at` and persists it; when the persist loses a race
/// (`PreconditionFailed`), downloads the database again and runs `work` again, up to
/// `attempts` times in all, waiting a little longer (with jitter) before each retry.
///
/// `work` may run more than once: it must do all of its writes through the store it
/// is given, and hold nothing from a run that lost.
///
/// # Errors
/// `work`'s error (the database is not persisted); the last `PreconditionFailed` when
/// every attempt lost; the errors of [`RemoteSqlite::open`] and `persist`.
pub async fn with_remote_sqlite<T, F, Fut>(
    config: &ObjectStoreConfig,
    at: &ObjectLocation,
    cache: &Path,
    attempts: u32,
    mut work: F,
) -> Result<T>
where
    F: FnMut(StoreSet) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut db = RemoteSqlite::open(config, at, cache).await?;
        let outcome = match work(db.store_set()).await {
            Ok(value) => db.persist().await.map(|_| value),
            Err(e) => Err(e),
        };
        db.close().await?;
        match outcome {
            Err(e) if e.kind() == ErrorKind::PreconditionFailed && attempt < attempts => {
                tracing::debug!(object = %at, attempt, "lost a persist race; running the unit again");
                tokio::time::sleep(lost_race_pause(attempt)).await;
            }
            other => return other,
        }
    }
}

/// The pause before running a unit again after its persist lost race number
/// `attempt`: the retry layer's full-jitter backoff, from 10 ms up to 640 ms, so that
/// writers that lost together do not come back together.
#[must_use]
pub fn lost_race_pause(attempt: u32) -> Duration {
    crate::layers::RetryPolicy {
        attempts: attempt.saturating_add(1),
        base_ms: 10,
        max_ms: 640,
    }
    .pause(attempt)
}

/// The settings of `type: sqlite` whose `path` is an object (`s3://bucket/key`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteSettings {
    path: String,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    /// Where downloaded copies go (default: a `flowstore-remote` directory in the
    /// system's temporary directory).
    cache_dir: Option<PathBuf>,
}

/// Whether `settings` of a `sqlite` backend name a database in a bucket.
pub(crate) fn is_remote(settings: &crate::Settings) -> bool {
    settings
        .get("path")
        .and_then(serde_json::Value::as_str)
        .is_some_and(ObjectLocation::is_object_url)
}

/// Opens the database a `sqlite` backend's settings put in a bucket.
pub(crate) async fn open_configured(
    settings: &crate::Settings,
    ctx: crate::OpenContext,
) -> Result<RemoteSqlite> {
    let s: RemoteSettings = settings.parse("sqlite")?;
    let at = ObjectLocation::parse(&s.path).map_err(|e| {
        crate::registry::settings_error("sqlite", format!("`path`: {}", e.message()))
    })?;
    let config = ObjectStoreConfig {
        endpoint: s.endpoint,
        region: s.region,
        access_key_id: s.access_key_id,
        secret_access_key: s.secret_access_key.map(storage_ports::Secret::new),
    };
    let cache = s
        .cache_dir
        .unwrap_or_else(|| std::env::temp_dir().join("flowstore-remote"));
    Ok(RemoteSqlite::open(&config, &at, &cache)
        .await?
        .with_payload_limit(ctx.payload_limit))
}
