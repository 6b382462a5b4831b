//! # adapter-fs
//!
//! Workflow definitions as YAML files a person can read, diff and keep in git:
//! `<root>/<tenant>/workflows/<workflow>/v<N>.yaml`, one file per version, holding the
//! metadata (version, parent, author, creation time, content hash) and the definition.
//!
//! - Writes are atomic and durable: a unique temp file, fsync, rename, fsync of the
//!   directory. A crash leaves either the old state or the new one.
//! - Version assignment holds an exclusive advisory lock on `<workflow>/.lock`, so it
//!   is safe across tasks and processes (W4); the highest version ever assigned is kept
//!   in `.high-water`, so versions are never reused after a delete (W3).
//! - A file damaged or edited by hand (unparsable, hash mismatch, wrong version) is
//!   logged with its path and reason and skipped by listings; reading it explicitly is
//!   a `CorruptData` error (W10).
//! - Directories are created private to the user (0700).
//!
//! YAML goes through `serde-saphyr`: `serde_yaml` is deprecated and unmaintained, and
//! serde-saphyr is pure Rust, maintained, and panic-free on bad input.
//!
//! The other concerns a person may want to read are files too:
//! - documents: `<root>/<tenant>/documents/<collection>/<id>.json`;
//! - run logs: `<root>/<tenant>/runs/<run>/` with `run.json` and `steps.jsonl`;
//! - metrics: `<root>/<tenant>/metrics/<workflow>/` with one record per run, the
//!   folded aggregate and the patterns.
//!
//! The queue, credentials and transactions answer `Unsupported`: a queue of files
//! would be a poor database, and secrets never go into files.

mod config;
mod documents;
mod files;
mod format;
mod metrics;
mod operations;
mod run_index;
mod runs;
mod watch;
mod workflows;

pub use crate::config::Config;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage_ports::{Capabilities, Error, PayloadLimit, Result, StoreSet, UnsupportedStore};

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "fs";

/// The file store. Clones share the root.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
    limit: PayloadLimit,
}

impl FsStore {
    /// Opens (creating, 0700) the store rooted at `root`.
    ///
    /// # Errors
    /// `Unavailable` when the directory cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        files::create_private_dir(&root)?;
        format::open(&root)?;
        runs::sweep_staging(&root);
        Ok(Self {
            root: Arc::new(root),
            limit: PayloadLimit::default(),
        })
    }

    /// Sets the payload limit (N4).
    #[must_use]
    pub fn with_payload_limit(mut self, limit: PayloadLimit) -> Self {
        self.limit = limit;
        self
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What this adapter offers: workflows, runs (watched by polling), metrics and
    /// documents.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::none(BACKEND);
        c.workflows = true;
        c.runs = true;
        c.run_watch = true;
        c.metrics = true;
        c.documents = true;
        // The data directory records its format (`flowstore-format`), checked on open.
        c.schema_migrations = true;
        c
    }

    /// Every port: files where [`FsStore::capabilities`] says so, the others
    /// `Unsupported`.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
        let me = Arc::new(self.clone());
        let no = Arc::new(UnsupportedStore::new(BACKEND));
        StoreSet {
            workflows: me.clone(),
            runs: me.clone(),
            metrics: me.clone(),
            credentials: no.clone(),
            queue: no.clone(),
            schedules: no.clone(),
            documents: me.clone(),
            transactions: no.clone(),
            operations: me.clone(),
            job_transfer: no.clone(),
            metrics_transfer: me,
        }
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| Error::backend(format!("file task failed: {e}")))?
    }
}

/// Opens the backend `config` describes, with `limit` on every payload: the entry
/// point storage-wiring's registry calls for `type: fs`.
///
/// # Errors
/// As [`FsStore::open`].
pub fn open(config: &Config, limit: PayloadLimit) -> Result<StoreSet> {
    Ok(FsStore::open(config.path.clone())?
        .with_payload_limit(limit)
        .store_set())
}
