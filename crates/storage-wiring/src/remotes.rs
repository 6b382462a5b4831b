//! The databases of a [`crate::Storage`] that live in buckets (`type: sqlite` with
//! `path: s3://...`), kept so that the host can persist them: a remote database is
//! only written back when asked, at the end of a unit of work or a command.

#[cfg(feature = "objects")]
use std::sync::Arc;

use storage_ports::Result;

/// The remote databases a storage opened (none without the `objects` feature).
#[derive(Debug, Clone, Default)]
pub(crate) struct Remotes {
    #[cfg(feature = "objects")]
    /// Each database with its location (kept apart so that naming one never waits
    /// for its persist).
    open: Vec<(
        String,
        Arc<tokio::sync::Mutex<crate::remote_sqlite::RemoteSqlite>>,
    )>,
}

impl Remotes {
    #[cfg(feature = "objects")]
    pub(crate) fn add(&mut self, db: crate::remote_sqlite::RemoteSqlite) {
        let at = db.location().to_string();
        self.open.push((at, Arc::new(tokio::sync::Mutex::new(db))));
    }

    /// Persists each; see [`crate::Storage::persist`].
    pub(crate) async fn persist(&self) -> Result<usize> {
        #[allow(unused_mut)]
        let mut uploaded = 0;
        #[cfg(feature = "objects")]
        for (_, db) in &self.open {
            if db.lock().await.persist().await? == crate::remote_sqlite::Persisted::Uploaded {
                uploaded += 1;
            }
        }
        Ok(uploaded)
    }

    /// Where each lives, for messages.
    pub(crate) fn locations(&self) -> Vec<String> {
        #[cfg(feature = "objects")]
        {
            self.open.iter().map(|(at, _)| at.clone()).collect()
        }
        #[cfg(not(feature = "objects"))]
        {
            Vec::new()
        }
    }
}
