//! Building the [`Storage`] bundle from a [`StorageConfig`].

use storage_ports::{Capabilities, StoreSet, TenantId};

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
    /// A key that does not exist.
    #[error("unknown key {key}; allowed: {allowed}")]
    UnknownKey {
        /// The key or variable.
        key: String,
        /// What is allowed.
        allowed: String,
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
}

impl Storage {
    /// Builds the ports `config` names.
    ///
    /// # Errors
    /// [`WiringError::NotCompiled`] for a backend whose feature is off.
    pub fn build(config: &StorageConfig) -> Result<Self, WiringError> {
        for c in Concern::ALL {
            let kind = config.backend(c).kind;
            let compiled = kind == BackendKind::Memory && cfg!(feature = "memory");
            if !compiled {
                return Err(WiringError::NotCompiled {
                    concern: c,
                    backend: kind.as_str(),
                });
            }
        }
        #[cfg(feature = "memory")]
        {
            // Every concern is memory (checked above): one shared store, so that
            // transactions across runs and queue are real.
            let store = adapter_memory::MemoryStore::new(
                adapter_memory::MemoryOptions::default()
                    .with_payload_limit(config.payload_limit_bytes),
            );
            let backends = Concern::ALL
                .iter()
                .map(|c| (*c, config.backend(*c).kind))
                .collect();
            Ok(Self {
                set: store.store_set(),
                backends,
            })
        }
        #[cfg(not(feature = "memory"))]
        {
            Err(WiringError::NotCompiled {
                concern: Concern::Workflows,
                backend: config.workflows.kind.as_str(),
            })
        }
    }

    /// Wraps an already built set (an outside adapter, a test).
    #[must_use]
    pub fn from_set(set: StoreSet) -> Self {
        Self {
            set,
            backends: Vec::new(),
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

    /// A view of every port scoped to `tenant`.
    #[must_use]
    pub fn tenant(&self, tenant: TenantId) -> TenantView {
        TenantView::new(self.set.clone(), tenant)
    }
}
