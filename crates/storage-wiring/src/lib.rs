//! # storage-wiring
//!
//! Builds flowstore's ports from configuration: one backend per concern (workflows,
//! runs, metrics, credentials, queue, documents), environment overrides on top, and a
//! tenant-scoped view so host code does not pass the tenant to every call. Each
//! adapter is behind a cargo feature, so a host compiles only the backends it uses;
//! the host's core depends on `storage-ports` alone.

pub mod archive;
mod background;
#[cfg(feature = "objects")]
pub mod backup;
mod build;
mod composite;
mod config;
pub mod layers;
mod registry;
#[cfg(feature = "objects")]
pub mod remote_sqlite;
mod remotes;
pub mod retention;
pub mod scheduler;
mod tenant_view;
pub mod transfer;

pub use background::BackgroundTask;
pub use build::{Storage, WiringError};
pub use config::{default_data_dir, BackendConfig, Concern, StorageConfig};
pub use registry::{settings_error, OpenContext, OpenFuture, Registry, Settings};
pub use tenant_view::TenantView;
pub use transfer::{transfer, TransferError, TransferReport};
