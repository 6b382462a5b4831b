//! Building the [`Storage`] bundle from a [`StorageConfig`].

use std::path::PathBuf;
use std::sync::Arc;

use storage_ports::{Capabilities, StoreSet, TenantId};

use crate::composite::CompositeOperations;
use crate::config::BackendConfig;

use crate::config::{BackendKind, Concern, StorageConfig};
use crate::tenant_view::TenantView;

/// A configuration that cannot be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A key holds a value outside the allowed set.
    #[error("invalid value {value:?} for {key}; allowed: {allowed}")]
    InvalidValue {
        /// The key or variable.
        key: String,
        /// The value given (never a URL or secret).
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The configuration file is not valid YAML of the expected shape.
    #[error("invalid configuration: {message}")]
    Yaml {
        /// The parser's message, naming the key and position.
        message: String,
    },
    /// A key that does not exist.
    #[error("unknown key {key}; allowed: {allowed}")]
    UnknownKey {
        /// The key or variable.
        key: String,
        /// What is allowed.
        allowed: String,
    },
    /// A backend could not be opened.
    #[error("cannot open the {backend} backend for {concern}: {source}")]
    Open {
        /// The concern.
        concern: Concern,
        /// The backend.
        backend: &'static str,
        /// Why.
        source: storage_ports::Error,
    },
    /// A setting the backend needs is missing.
    #[error("{concern}.{key} is required for the {backend} backend (or set {env})")]
    MissingSetting {
        /// The concern.
        concern: Concern,
        /// The missing key.
        key: &'static str,
        /// The backend.
        backend: &'static str,
        /// The environment variable that can set it.
        env: String,
    },
    /// The backend is not compiled into this build.
    #[error("{concern} is configured with the {backend} backend, which this build does not include; enable the cargo feature `{backend}` of storage-wiring")]
    NotCompiled {
        /// The concern.
        concern: Concern,
        /// The backend.
        backend: &'static str,
    },
}

/// Every port, built from config, each concern on its backend.
#[derive(Debug, Clone)]
pub struct Storage {
    set: StoreSet,
    backends: Vec<(Concern, BackendKind)>,
    instances: Vec<(Vec<Concern>, Arc<dyn storage_ports::Operations>)>,
    retention: Option<crate::retention::RetentionConfig>,
}

impl Storage {
    /// Builds the ports `config` names: each distinct backend is opened once, and
    /// each concern takes its port from its backend.
    ///
    /// # Errors
    /// [`WiringError::NotCompiled`] for a backend whose feature is off;
    /// [`WiringError::Open`] when a backend cannot be opened.
    pub async fn build(config: &StorageConfig) -> Result<Self, WiringError> {
        let mut instances: Vec<(InstanceKey, StoreSet, Vec<Concern>)> = Vec::new();
        for c in Concern::ALL {
            let b = config.backend(c);
            let key = InstanceKey::of(b);
            match instances.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, concerns)) => concerns.push(c),
                None => {
                    instances.push((key, open(c, b, config.payload_limit_bytes).await?, vec![c]))
                }
            }
        }
        let backends = Concern::ALL
            .iter()
            .map(|c| (*c, config.backend(*c).kind))
            .collect();
        let ops = instances
            .iter()
            .map(|(_, s, c)| (c.clone(), s.operations.clone()))
            .collect();
        if let [(_, only, _)] = instances.as_slice() {
            return Ok(Self {
                set: layered(only.clone(), config),
                backends,
                instances: ops,
                retention: config.retention.clone(),
            });
        }
        let of = |c: Concern| -> &StoreSet {
            let key = InstanceKey::of(config.backend(c));
            // Every concern's instance was opened above.
            instances
                .iter()
                .find(|(k, _, _)| *k == key)
                .map_or(&instances[0].1, |(_, s, _)| s)
        };
        let (runs, queue) = (of(Concern::Runs), of(Concern::Queue));
        let shared = InstanceKey::of(config.backend(Concern::Runs))
            == InstanceKey::of(config.backend(Concern::Queue));
        let transactions = shared && runs.capabilities().transactions;
        let set = StoreSet {
            workflows: of(Concern::Workflows).workflows.clone(),
            runs: runs.runs.clone(),
            metrics: of(Concern::Metrics).metrics.clone(),
            credentials: of(Concern::Credentials).credentials.clone(),
            queue: queue.queue.clone(),
            documents: of(Concern::Documents).documents.clone(),
            transactions: if transactions {
                runs.transactions.clone()
            } else {
                StoreSet::unsupported("mixed").transactions
            },
            operations: Arc::new(CompositeOperations {
                backends: instances
                    .iter()
                    .map(|(_, s, c)| (s.operations.clone(), c.clone()))
                    .collect(),
                transactions,
            }),
            job_transfer: queue.job_transfer.clone(),
            metrics_transfer: of(Concern::Metrics).metrics_transfer.clone(),
        };
        Ok(Self {
            set: layered(set, config),
            backends,
            instances: ops,
            retention: config.retention.clone(),
        })
    }

    /// Wraps an already built set (an outside adapter, a test).
    #[must_use]
    pub fn from_set(set: StoreSet) -> Self {
        let ops = vec![(Concern::ALL.to_vec(), set.operations.clone())];
        Self {
            set,
            backends: Vec::new(),
            instances: ops,
            retention: None,
        }
    }

    /// Every port.
    #[must_use]
    pub fn ports(&self) -> &StoreSet {
        &self.set
    }

    /// What the built set offers.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        self.set.capabilities()
    }

    /// The backend of each concern, as configured.
    #[must_use]
    pub fn backends(&self) -> &[(Concern, BackendKind)] {
        &self.backends
    }

    /// Each distinct backend instance once, with the concerns it keeps and its own
    /// operations port (health, schema, stats), for diagnostics such as
    /// `flowstore doctor`.
    #[must_use]
    pub fn instances(&self) -> &[(Vec<Concern>, Arc<dyn storage_ports::Operations>)] {
        &self.instances
    }

    /// Starts the background retention the configuration asks for (`retention:`), on
    /// the current tokio runtime; `None` when it asks for none. Dropping the task stops
    /// it.
    #[must_use]
    pub fn start_retention(&self) -> Option<crate::retention::RetentionTask> {
        self.retention
            .clone()
            .map(|c| crate::retention::start(self.set.clone(), c))
    }

    /// A view of every port scoped to `tenant`.
    #[must_use]
    pub fn tenant(&self, tenant: TenantId) -> TenantView {
        TenantView::new(self.set.clone(), tenant)
    }
}

/// `set` behind the layers `config` switches on (or as it is).
fn layered(set: StoreSet, config: &StorageConfig) -> StoreSet {
    if !config.layers.any() {
        return set;
    }
    let names: Vec<_> = Concern::ALL
        .iter()
        .map(|c| (*c, config.backend(*c).kind.as_str().to_owned()))
        .collect();
    config.layers.apply(set, &names)
}

/// What makes two concerns share one backend instance: same kind and location.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstanceKey(BackendKind, Option<PathBuf>, Option<String>);

impl InstanceKey {
    fn of(b: &BackendConfig) -> Self {
        Self(b.kind, b.path.clone(), b.url.clone())
    }
}

/// Opens one backend.
#[allow(unused_variables)]
async fn open(
    concern: Concern,
    b: &BackendConfig,
    payload_limit: usize,
) -> Result<StoreSet, WiringError> {
    match b.kind {
        #[cfg(feature = "memory")]
        BackendKind::Memory => Ok(adapter_memory::MemoryStore::new(
            adapter_memory::MemoryOptions::default().with_payload_limit(payload_limit),
        )
        .store_set()),
        #[cfg(feature = "fs")]
        BackendKind::Fs => {
            let path = b
                .path
                .clone()
                .unwrap_or_else(crate::config::default_data_dir);
            adapter_fs::FsStore::open(path)
                .map(|s| {
                    s.with_payload_limit(storage_ports::PayloadLimit(payload_limit))
                        .store_set()
                })
                .map_err(|source| WiringError::Open {
                    concern,
                    backend: "fs",
                    source,
                })
        }
        #[cfg(feature = "sqlite")]
        BackendKind::Sqlite => {
            let path = b
                .path
                .clone()
                .unwrap_or_else(|| crate::config::default_data_dir().join("flowstore.db"));
            adapter_sqlite::SqliteStore::open(path)
                .await
                .map(|s| {
                    s.with_payload_limit(storage_ports::PayloadLimit(payload_limit))
                        .store_set()
                })
                .map_err(|source| WiringError::Open {
                    concern,
                    backend: "sqlite",
                    source,
                })
        }
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => {
            let url = b
                .url
                .as_deref()
                .ok_or_else(|| WiringError::MissingSetting {
                    concern,
                    key: "url",
                    backend: "postgres",
                    env: format!("FLOWSTORE_{}__URL", concern.key().to_uppercase()),
                })?;
            adapter_postgres::PostgresStore::connect(
                url,
                adapter_postgres::PostgresOptions::default(),
            )
            .await
            .map(|s| {
                s.with_payload_limit(storage_ports::PayloadLimit(payload_limit))
                    .store_set()
            })
            .map_err(|source| WiringError::Open {
                concern,
                backend: "postgres",
                source,
            })
        }
        #[cfg(feature = "redis")]
        BackendKind::Redis => {
            let url = b
                .url
                .as_deref()
                .ok_or_else(|| WiringError::MissingSetting {
                    concern,
                    key: "url",
                    backend: "redis",
                    env: format!("FLOWSTORE_{}__URL", concern.key().to_uppercase()),
                })?;
            adapter_redis::RedisStore::connect(url)
                .await
                .map(|s| {
                    s.with_payload_limit(storage_ports::PayloadLimit(payload_limit))
                        .store_set()
                })
                .map_err(|source| WiringError::Open {
                    concern,
                    backend: "redis",
                    source,
                })
        }
        #[cfg(feature = "keyring")]
        BackendKind::Keyring => {
            let value = b.store.as_deref().unwrap_or("auto");
            let choice = adapter_keyring::KeyringChoice::parse(value).map_err(|_| {
                WiringError::InvalidValue {
                    key: format!("{}.store", concern.key()),
                    value: value.to_owned(),
                    allowed: adapter_keyring::KeyringChoice::ALLOWED.to_owned(),
                }
            })?;
            // Opened when first used: a host that never touches credentials needs no
            // keyring, and one that does gets an error naming the stores tried.
            Ok(adapter_keyring::KeyringStore::lazy(choice).store_set())
        }
        // Reachable when a backend's feature is off.
        #[allow(unreachable_patterns)]
        other => Err(WiringError::NotCompiled {
            concern,
            backend: other.as_str(),
        }),
    }
}
