//! The configuration value: which backend keeps each concern, and its settings.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::build::WiringError;
pub use storage_ports::Concern;

/// A backend type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In-process memory (`adapter-memory`).
    Memory,
    /// Files (`adapter-fs`).
    Fs,
    /// SQLite (`adapter-sqlite`).
    Sqlite,
    /// PostgreSQL (`adapter-postgres`).
    Postgres,
    /// Redis (`adapter-redis`).
    Redis,
    /// OS keyring (`adapter-keyring`).
    Keyring,
}

impl BackendKind {
    /// The accepted values, for error messages.
    pub const ALLOWED: &'static str = "memory, fs, sqlite, postgres, redis, keyring";

    /// Parses a config value.
    ///
    /// # Errors
    /// [`WiringError::InvalidValue`] naming the key and the allowed values.
    pub fn parse(key: &str, s: &str) -> Result<Self, WiringError> {
        Ok(match s {
            "memory" => Self::Memory,
            "fs" => Self::Fs,
            "sqlite" => Self::Sqlite,
            "postgres" => Self::Postgres,
            "redis" => Self::Redis,
            "keyring" => Self::Keyring,
            _ => {
                return Err(WiringError::InvalidValue {
                    key: key.to_owned(),
                    value: s.to_owned(),
                    allowed: Self::ALLOWED.to_owned(),
                })
            }
        })
    }

    /// The name used in config and errors.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Fs => "fs",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Keyring => "keyring",
        }
    }
}

/// One concern's backend and settings.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Which backend.
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// Server URL (postgres, redis). May hold a password: never shown by Debug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Directory or file (fs, sqlite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Which OS store (keyring): `secret-service`, `keyutils` or `auto` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

impl BackendConfig {
    /// A backend of `kind` with no settings.
    #[must_use]
    pub fn of(kind: BackendKind) -> Self {
        Self {
            kind,
            url: None,
            path: None,
            store: None,
        }
    }
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("path", &self.path)
            .field("store", &self.store)
            .finish()
    }
}

/// The data directory when no path is configured: `./flowstore-data`. Workflow files
/// go under `<dir>/<tenant>/workflows/`.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("flowstore-data")
}

/// The whole configuration: a backend per concern. Keys left out take the default.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Workflow definitions.
    pub workflows: BackendConfig,
    /// Run logs.
    pub runs: BackendConfig,
    /// Metrics.
    pub metrics: BackendConfig,
    /// Credentials.
    pub credentials: BackendConfig,
    /// Job queue.
    pub queue: BackendConfig,
    /// Documents.
    pub documents: BackendConfig,
    /// Largest payload in bytes (N4); default 16 MiB.
    #[serde(default = "default_limit")]
    pub payload_limit_bytes: usize,
    /// Tracing and retry around every port (off by default).
    #[serde(default)]
    pub layers: crate::layers::LayerConfig,
    /// Background retention, started by [`crate::Storage::start_retention`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::retention::RetentionConfig>,
}

fn default_limit() -> usize {
    storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES
}

impl Default for StorageConfig {
    /// The embedded default: workflow definitions as files under
    /// `./flowstore-data/<tenant>/workflows`; runs, metrics, the queue and documents in
    /// `./flowstore-data/flowstore.db`; credentials in the OS keyring (whichever store
    /// answers, opened when first used: never written to a file or database).
    fn default() -> Self {
        let mut c = Self::memory();
        c.workflows = BackendConfig {
            path: Some(default_data_dir()),
            ..BackendConfig::of(BackendKind::Fs)
        };
        let db = BackendConfig {
            path: Some(default_data_dir().join("flowstore.db")),
            ..BackendConfig::of(BackendKind::Sqlite)
        };
        c.credentials = BackendConfig {
            store: Some("auto".into()),
            ..BackendConfig::of(BackendKind::Keyring)
        };
        c.runs = db.clone();
        c.metrics = db.clone();
        c.queue = db.clone();
        c.documents = db;
        c
    }
}

impl StorageConfig {
    /// Parses a YAML configuration file's text; keys left out take the default.
    ///
    /// # Errors
    /// [`WiringError::Yaml`] with the parser's message (it names the key and position).
    pub fn from_yaml(text: &str) -> Result<Self, WiringError> {
        serde_saphyr::from_str(text).map_err(|e| WiringError::Yaml {
            message: e.to_string(),
        })
    }

    /// Every concern in memory: for tests and trials.
    #[must_use]
    pub fn memory() -> Self {
        let m = BackendConfig::of(BackendKind::Memory);
        Self {
            workflows: m.clone(),
            runs: m.clone(),
            metrics: m.clone(),
            credentials: m.clone(),
            queue: m.clone(),
            documents: m,
            payload_limit_bytes: default_limit(),
            layers: crate::layers::LayerConfig::default(),
            retention: None,
        }
    }

    /// The backend of one concern.
    #[must_use]
    pub fn backend(&self, c: Concern) -> &BackendConfig {
        match c {
            Concern::Workflows => &self.workflows,
            Concern::Runs => &self.runs,
            Concern::Metrics => &self.metrics,
            Concern::Credentials => &self.credentials,
            Concern::Queue => &self.queue,
            Concern::Documents => &self.documents,
        }
    }

    fn backend_mut(&mut self, c: Concern) -> &mut BackendConfig {
        match c {
            Concern::Workflows => &mut self.workflows,
            Concern::Runs => &mut self.runs,
            Concern::Metrics => &mut self.metrics,
            Concern::Credentials => &mut self.credentials,
            Concern::Queue => &mut self.queue,
            Concern::Documents => &mut self.documents,
        }
    }

    /// Applies overrides such as `FLOWSTORE_RUNS__TYPE=postgres`,
    /// `FLOWSTORE_RUNS__URL=...`, `FLOWSTORE_WORKFLOWS__PATH=...`,
    /// `FLOWSTORE_PAYLOAD_LIMIT_BYTES=...`. Other variables are ignored.
    ///
    /// # Errors
    /// [`WiringError::InvalidValue`] or [`WiringError::UnknownKey`] naming the variable.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<(), WiringError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("FLOWSTORE_") else {
                continue;
            };
            if rest == "PAYLOAD_LIMIT_BYTES" {
                self.payload_limit_bytes =
                    value.parse().map_err(|_| WiringError::InvalidValue {
                        key: name.clone(),
                        value: value.clone(),
                        allowed: "a number of bytes".into(),
                    })?;
                continue;
            }
            let Some((concern, field)) = rest.split_once("__") else {
                continue;
            };
            if concern == "LAYERS" {
                let on = |v: &str| match v {
                    "true" | "on" | "1" => Ok(true),
                    "false" | "off" | "0" => Ok(false),
                    _ => Err(WiringError::InvalidValue {
                        key: name.clone(),
                        value: v.to_owned(),
                        allowed: "true, false".into(),
                    }),
                };
                match field {
                    "TRACING" => self.layers.tracing = on(&value)?,
                    "METRICS" => self.layers.metrics = on(&value)?,
                    "RETRY" => {
                        self.layers.retry = on(&value)?.then(crate::layers::RetryPolicy::default);
                    }
                    "TIMEOUT" => {
                        self.layers.timeout =
                            on(&value)?.then(crate::layers::TimeoutPolicy::default);
                    }
                    _ => {
                        return Err(WiringError::UnknownKey {
                            key: name.clone(),
                            allowed: "FLOWSTORE_LAYERS__TRACING, FLOWSTORE_LAYERS__METRICS, FLOWSTORE_LAYERS__RETRY, FLOWSTORE_LAYERS__TIMEOUT".into(),
                        })
                    }
                }
                continue;
            }
            let c = Concern::ALL
                .into_iter()
                .find(|c| c.key().eq_ignore_ascii_case(concern))
                .ok_or_else(|| WiringError::UnknownKey {
                    key: name.clone(),
                    allowed: "workflows, runs, metrics, credentials, queue, documents".into(),
                })?;
            let b = self.backend_mut(c);
            match field {
                "TYPE" => b.kind = BackendKind::parse(&name, &value)?,
                "URL" => b.url = Some(value),
                "PATH" => b.path = Some(PathBuf::from(value)),
                "STORE" => b.store = Some(value),
                _ => {
                    return Err(WiringError::UnknownKey {
                        key: name.clone(),
                        allowed: "TYPE, URL, PATH, STORE".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_sets_concerns_and_names_bad_keys() {
        let c = StorageConfig::from_yaml(
            "workflows:\n  type: fs\n  path: /srv/wf\nruns:\n  type: memory\n",
        );
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.workflows.kind, BackendKind::Fs);
        assert_eq!(
            c.workflows.path.as_deref(),
            Some(std::path::Path::new("/srv/wf"))
        );
        let e = StorageConfig::from_yaml("runs:\n  type: mysql\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("mysql"), "{e}");
        let e = StorageConfig::from_yaml("jobs:\n  type: memory\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("jobs"), "{e}");
    }

    #[test]
    fn env_overrides_name_the_key_and_allowed_values() {
        let mut c = StorageConfig::memory();
        let ok = c.apply_env([
            (
                "FLOWSTORE_RUNS__URL".to_owned(),
                "postgres://u:pw@h/db".to_owned(),
            ),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]);
        assert!(ok.is_ok());
        assert_eq!(c.runs.url.as_deref(), Some("postgres://u:pw@h/db"));
        assert!(!format!("{c:?}").contains("pw@"), "Debug must hide URLs");
        let e = c
            .apply_env([("FLOWSTORE_RUNS__TYPE".to_owned(), "mysql".to_owned())])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("FLOWSTORE_RUNS__TYPE") && e.contains("memory, fs, sqlite"),
            "{e}"
        );
        let e = c
            .apply_env([("FLOWSTORE_JOBS__TYPE".to_owned(), "memory".to_owned())])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("FLOWSTORE_JOBS__TYPE") && e.contains("queue"),
            "{e}"
        );
    }
}
