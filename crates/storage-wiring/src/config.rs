//! The configuration value: which backend keeps each concern, and its settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::build::WiringError;
pub use storage_ports::Concern;

/// One concern's backend: its registered name (`type`) and its own settings (every
/// other key), which the backend's `Config` checks when it opens, refusing keys it does
/// not have. `Debug` hides passwords in URLs and keys named like secrets.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendConfig {
    /// The backend's name in the [`crate::Registry`]: `memory`, `fs`, `sqlite`,
    /// `postgres`, `redis`, `keyring`, or one an outside crate registered.
    #[serde(rename = "type")]
    pub backend: String,
    /// The backend's own settings (`path`, `url`, `max_connections`, ...).
    #[serde(flatten)]
    pub settings: crate::registry::Settings,
}

impl BackendConfig {
    /// The backend `name` with no settings (each takes its default).
    #[must_use]
    pub fn of(name: impl Into<String>) -> Self {
        Self {
            backend: name.into(),
            settings: crate::registry::Settings::default(),
        }
    }

    /// The same backend with `key` set to `value`.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.settings.set(key, value.into());
        self
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
    /// The scheduler of periodic jobs, started by [`crate::Storage::start_scheduler`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<crate::scheduler::SchedulerConfig>,
}

/// A path as a setting's value.
fn path_value(p: &std::path::Path) -> serde_json::Value {
    serde_json::Value::String(p.display().to_string())
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
        c.workflows = BackendConfig::of("fs").with("path", path_value(&default_data_dir()));
        let db = BackendConfig::of("sqlite")
            .with("path", path_value(&default_data_dir().join("flowstore.db")));
        c.credentials = BackendConfig::of("keyring").with("store", "auto");
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
        let m = BackendConfig::of("memory");
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
            scheduler: None,
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
    /// `FLOWSTORE_RUNS__URL=...`, `FLOWSTORE_RUNS__MAX_CONNECTIONS=32` (any setting of
    /// the concern's backend, lowercased), `FLOWSTORE_PAYLOAD_LIMIT_BYTES=...`. `TYPE`
    /// is applied first, and a new type starts with no settings (they were the old
    /// backend's). Other variables are ignored.
    ///
    /// # Errors
    /// [`WiringError::InvalidValue`] or [`WiringError::UnknownKey`] naming the variable.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<(), WiringError> {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(n, _)| n.starts_with("FLOWSTORE_"))
            .collect();
        // Types first: a setting given beside a new type belongs to the new backend.
        // After the prefix, names are matched without regard to case, so `__type` is
        // the type too and never a setting called `type` (found by the config fuzzer).
        vars.sort_by_key(|(n, _)| !n.to_ascii_uppercase().ends_with("__TYPE"));
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("FLOWSTORE_") else {
                continue;
            };
            let rest = rest.to_ascii_uppercase();
            let rest = rest.as_str();
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
            if field == "TYPE" {
                if b.backend != value {
                    *b = BackendConfig::of(value);
                }
            } else if field.is_empty() {
                return Err(WiringError::UnknownKey {
                    key: name.clone(),
                    allowed: "TYPE, or a setting of the backend (URL, PATH, ...)".into(),
                });
            } else {
                let key = field.to_ascii_lowercase();
                let v = setting_value(&key, value);
                b.settings.set(key, v);
            }
        }
        Ok(())
    }
}

/// A setting's value from an environment variable: numbers and booleans as such (a
/// pool size, a switch), except for keys that are always text (URLs, paths, names).
fn setting_value(key: &str, raw: String) -> serde_json::Value {
    const TEXT: [&str; 4] = ["url", "path", "store", "key_prefix"];
    if !TEXT.contains(&key) {
        if let Ok(n) = raw.parse::<u64>() {
            return n.into();
        }
        match raw.as_str() {
            "true" => return true.into(),
            "false" => return false.into(),
            _ => {}
        }
    }
    serde_json::Value::String(raw)
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
        assert_eq!(c.workflows.backend, "fs");
        assert_eq!(
            c.workflows.settings.get("path"),
            Some(&serde_json::json!("/srv/wf"))
        );
        let c = StorageConfig::from_yaml(
            "runs:\n  type: postgres\n  url: postgres://db/x\n  max_connections: 32\n",
        );
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.runs.settings.get("max_connections"),
            Some(&serde_json::json!(32))
        );
        let e = StorageConfig::from_yaml("jobs:\n  type: memory\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("jobs"), "{e}");
    }

    /// Found by `cargo xtask fuzz config`: a lower-case `__tYPE` became a setting
    /// named `type`, which took the backend's place when the config was written out.
    #[test]
    fn a_type_variable_in_any_case_is_the_type_never_a_setting() {
        let mut c = StorageConfig::memory();
        let ok = c.apply_env([
            ("FLOWSTORE_RUNS__tYPE".to_owned(), "sqlite".to_owned()),
            ("FLOWSTORE_RUNS__Path".to_owned(), "/x.db".to_owned()),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(c.runs.backend, "sqlite");
        assert_eq!(c.runs.settings.get("type"), None);
        assert_eq!(
            c.runs.settings.get("path"),
            Some(&serde_json::json!("/x.db"))
        );
        let back: StorageConfig = serde_json::to_value(&c)
            .and_then(serde_json::from_value)
            .unwrap_or_else(|_| StorageConfig::memory());
        assert_eq!(back, c, "the config survives a round trip");
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
        assert_eq!(
            c.runs.settings.get("url"),
            Some(&serde_json::json!("postgres://u:pw@h/db"))
        );
        assert!(!format!("{c:?}").contains("pw@"), "Debug must hide URLs");
        // A new type starts afresh, whatever order the variables come in.
        let ok = c.apply_env([
            (
                "FLOWSTORE_QUEUE__MAX_CONNECTIONS".to_owned(),
                "32".to_owned(),
            ),
            (
                "FLOWSTORE_QUEUE__URL".to_owned(),
                "postgres://db/x".to_owned(),
            ),
            ("FLOWSTORE_QUEUE__TYPE".to_owned(), "postgres".to_owned()),
        ]);
        assert!(ok.is_ok());
        assert_eq!(c.queue.backend, "postgres");
        assert_eq!(
            c.queue.settings.get("max_connections"),
            Some(&serde_json::json!(32))
        );
        assert_eq!(
            c.queue.settings.get("url"),
            Some(&serde_json::json!("postgres://db/x"))
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
