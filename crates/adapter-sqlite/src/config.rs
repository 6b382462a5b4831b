//! The settings of the SQLite backend, as a host writes them in YAML under a concern
//! (`runs: { type: sqlite, path: ./data/flowstore.db, busy_timeout_ms: 60000 }`) or
//! sets them with `FLOWSTORE_<CONCERN>__<KEY>`. Unknown keys are refused.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use storage_ports::{Error, Result};

/// SQLite settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database file, created when missing (default
    /// `./flowstore-data/flowstore.db`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// How long a writer waits for another process's write lock before `Unavailable`
    /// (default 30000 ms).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// Connections of this process (default 4; SQLite has one writer at a time).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// When a commit reaches the disk (default `normal`).
    #[serde(default)]
    pub synchronous: Synchronous,
}

/// SQLite's `synchronous` setting, in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// A commit is durable against a process crash; a power cut may lose the last
    /// commits (never the file). No fsync per commit: the WAL is synced at
    /// checkpoints.
    #[default]
    Normal,
    /// A commit is durable against a power cut too: one fsync of the WAL per commit.
    Full,
}

fn default_path() -> PathBuf {
    PathBuf::from("flowstore-data").join("flowstore.db")
}
fn default_busy_timeout_ms() -> u64 {
    30_000
}
fn default_max_connections() -> u32 {
    4
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: default_path(),
            busy_timeout_ms: default_busy_timeout_ms(),
            max_connections: default_max_connections(),
            synchronous: Synchronous::default(),
        }
    }
}

impl Config {
    /// Settings for the database at `path`, every other setting its default.
    #[must_use]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// The busy timeout.
    #[must_use]
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// Checks the settings before opening.
    ///
    /// # Errors
    /// `InvalidInput` for a pool of 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_connections == 0 {
            return Err(Error::invalid_input(
                "sqlite max_connections must be at least 1",
            ));
        }
        Ok(())
    }
}
