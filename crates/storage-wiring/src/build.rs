//! Building the [`Storage`] bundle from a [`StorageConfig`].

use std::sync::Arc;

use storage_ports::{Capabilities, PayloadLimit, StoreSet, TenantId};

use crate::composite::CompositeOperations;
use crate::config::{BackendConfig, Concern, StorageConfig};
use crate::registry::{OpenContext, Registry, Settings, SHIPPED};
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
        backend: String,
        /// Why.
        source: storage_ports::Error,
    },
    /// The backend is not compiled into this build.
    #[error("{concern} is configured with the {backend} backend, which this build does not include; enable the cargo feature `{backend}` of storage-wiring")]
    NotCompiled {
        /// The concern.
        concern: Concern,
        /// The backend.
        backend: String,
    },
    /// The backend refused its settings (an unknown key, a missing one, a bad value).
    #[error("invalid settings for {concern} ({backend}): {message}; set them under `{concern}:` in the configuration, or with {env}")]
    Settings {
        /// The concern.
        concern: Concern,
        /// The backend.
        backend: String,
        /// What is wrong, from the backend.
        message: String,
        /// The environment variable of the key at fault, or the pattern of them.
        env: String,
    },
    /// No backend of this name is registered.
    #[error("{concern} is configured with type {backend:?}, which no registered backend has; registered: {known}")]
    UnknownBackend {
        /// The concern.
        concern: Concern,
        /// The name given.
        backend: String,
        /// The registered names.
        known: String,
    },
}

/// Every port, built from config, each concern on its backend.
#[derive(Debug, Clone)]
pub struct Storage {
    set: StoreSet,
    backends: Vec<(Concern, String)>,
    instances: Vec<(Vec<Concern>, Arc<dyn storage_ports::Operations>)>,
    retention: Option<crate::retention::RetentionConfig>,
    scheduler: Option<crate::scheduler::SchedulerConfig>,
    remotes: crate::remotes::Remotes,
}

impl Storage {
    /// Builds the ports `config` names from the backends compiled in
    /// ([`Registry::builtin`]).
    ///
    /// # Errors
    /// As [`Storage::build_with`].
    pub async fn build(config: &StorageConfig) -> Result<Self, WiringError> {
        Self::build_with(config, &Registry::builtin()).await
    }

    /// Builds the ports `config` names from the backends of `registry`: each distinct
    /// backend (same type and settings) is opened once, and each concern takes its
    /// port from its backend.
    ///
    /// # Errors
    /// [`WiringError::UnknownBackend`] for a type nobody registered,
    /// [`WiringError::NotCompiled`] for one of flowstore's whose feature is off,
    /// [`WiringError::Open`] when a backend cannot be opened (its settings refused
    /// included).
    pub async fn build_with(
        config: &StorageConfig,
        registry: &Registry,
    ) -> Result<Self, WiringError> {
        let mut instances: Vec<(InstanceKey, StoreSet, Vec<Concern>)> = Vec::new();
        let mut remotes = crate::remotes::Remotes::default();
        for c in Concern::ALL {
            let b = config.backend(c);
            let key = InstanceKey::of(b);
            match instances.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, concerns)) => concerns.push(c),
                None => {
                    let ctx = OpenContext {
                        payload_limit: PayloadLimit(config.payload_limit_bytes),
                    };
                    let set = open(registry, c, b, ctx, &mut remotes).await?;
                    instances.push((key, set, vec![c]));
                }
            }
        }
        let backends = Concern::ALL
            .iter()
            .map(|c| (*c, config.backend(*c).backend.clone()))
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
                scheduler: config.scheduler.clone(),
                remotes,
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
        // A unit of work writes documents, runs and jobs in one transaction of one
        // instance: offered only when the three concerns are on that instance, so that
        // each write lands where its concern is configured.
        let home = InstanceKey::of(config.backend(Concern::Runs));
        let shared = [Concern::Queue, Concern::Documents]
            .into_iter()
            .all(|c| InstanceKey::of(config.backend(c)) == home);
        let transactions = shared && runs.capabilities().transactions;
        let set = StoreSet {
            workflows: of(Concern::Workflows).workflows.clone(),
            runs: runs.runs.clone(),
            metrics: of(Concern::Metrics).metrics.clone(),
            credentials: of(Concern::Credentials).credentials.clone(),
            queue: queue.queue.clone(),
            schedules: queue.schedules.clone(),
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
            scheduler: config.scheduler.clone(),
            remotes,
        })
    }

    /// Uploads every database of this storage that lives in a bucket (`type: sqlite`,
    /// `path: s3://...`) and changed since it was downloaded or last uploaded, each
    /// only over the version it downloaded. Call it when a unit of work or a command
    /// is done: until then, nothing it wrote is in the bucket. Answers how many were
    /// uploaded.
    ///
    /// # Errors
    /// `PreconditionFailed`, naming the object, when another writer uploaded first:
    /// nothing was overwritten, and the work must be redone on a fresh download
    /// (build the storage again); `Unavailable` when the object store fails.
    pub async fn persist(&self) -> storage_ports::Result<usize> {
        self.remotes.persist().await
    }

    /// Where the databases that live in buckets are (`s3://...`), for messages.
    #[must_use]
    pub fn remote_databases(&self) -> Vec<String> {
        self.remotes.locations()
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
            scheduler: None,
            remotes: crate::remotes::Remotes::default(),
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
    pub fn backends(&self) -> &[(Concern, String)] {
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

    /// Starts the scheduler of periodic jobs (Q19): the configuration's `scheduler:`,
    /// or every second over every tenant when it names none. Run it on every node:
    /// each tick is one job however many run. Dropping the task stops it.
    #[must_use]
    pub fn start_scheduler(&self) -> crate::scheduler::SchedulerTask {
        crate::scheduler::start(self.set.clone(), self.scheduler.clone().unwrap_or_default())
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
        .map(|c| (*c, config.backend(*c).backend.clone()))
        .collect();
    config.layers.apply(set, &names)
}

/// What makes two concerns share one backend instance: the same type and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstanceKey(String, Settings);

impl InstanceKey {
    fn of(b: &BackendConfig) -> Self {
        Self(b.backend.clone(), b.settings.clone())
    }
}

/// Opens one backend through the registry.
async fn open(
    registry: &Registry,
    concern: Concern,
    b: &BackendConfig,
    ctx: OpenContext,
    remotes: &mut crate::remotes::Remotes,
) -> Result<StoreSet, WiringError> {
    #[cfg(feature = "objects")]
    if b.backend == "sqlite" && crate::remote_sqlite::is_remote(&b.settings) {
        let db = crate::remote_sqlite::open_configured(&b.settings, ctx)
            .await
            .map_err(|source| open_error(concern, b, source))?;
        let set = db.store_set();
        remotes.add(db);
        return Ok(set);
    }
    #[cfg(not(feature = "objects"))]
    let _ = remotes;
    let Some(opening) = registry.open(&b.backend, b.settings.clone(), ctx) else {
        if SHIPPED.contains(&b.backend.as_str()) {
            return Err(WiringError::NotCompiled {
                concern,
                backend: b.backend.clone(),
            });
        }
        return Err(WiringError::UnknownBackend {
            concern,
            backend: b.backend.clone(),
            known: registry.names().join(", "),
        });
    };
    opening
        .await
        .map_err(|source| open_error(concern, b, source))
}

/// A backend's failure to open, as the wiring reports it.
fn open_error(concern: Concern, b: &BackendConfig, source: storage_ports::Error) -> WiringError {
    {
        if crate::registry::is_settings_error(&source) {
            let field = source
                .message()
                .split('`')
                .nth(1)
                .filter(|f| !f.is_empty() && !f.contains(' '));
            let upper = concern.key().to_ascii_uppercase();
            WiringError::Settings {
                concern,
                backend: b.backend.clone(),
                message: source.message().to_owned(),
                env: match field {
                    Some(f) => format!("FLOWSTORE_{upper}__{}", f.to_ascii_uppercase()),
                    None => format!("FLOWSTORE_{upper}__<KEY>"),
                },
            }
        } else {
            WiringError::Open {
                concern,
                backend: b.backend.clone(),
                source,
            }
        }
    }
}
