//! # adapter-keyring
//!
//! Credentials (C1-C5) in the operating system's secret store, through `keyring-core`
//! with explicit stores:
//! - [`KeyringChoice::SecretService`]: the Secret Service over D-Bus
//!   (`zbus-secret-service-keyring-store`), for desktops and servers running a keyring
//!   daemon such as gnome-keyring;
//! - [`KeyringChoice::Keyutils`]: the Linux kernel key retention service
//!   (`linux-keyutils-keyring-store`) for headless hosts. Its keys live in kernel
//!   memory and **do not survive a reboot**;
//! - [`KeyringChoice::Auto`]: the first of those that answers, and it says which.
//!
//! There is no silent fallback to memory: when no store answers, the error names the
//! stores tried, why each failed, and how to enable one.
//!
//! Each tenant is a keyring service `flowstore:<tenant>`; each key is a user in it.
//! `list` needs an index, kept as one more entry (`flowstore index`, a name no key can
//! have). It is kept consistent by a per-tenant lock in the process, by write order
//! (the index learns of a key before the key is written, and forgets it after the key is
//! deleted) and by repair on read: a listed key that no longer exists is dropped, and
//! where the store can enumerate (the Secret Service), what it finds is the truth and the
//! index is rewritten from it.

mod config;
mod error;
mod index;
mod store;

pub use crate::config::Config;
pub use crate::store::{KeyringChoice, KeyringStore};

/// Backend name reported in capabilities, health and errors.
pub const BACKEND: &str = "keyring";

/// Opens the backend `config` describes: the entry point storage-wiring's registry
/// calls for `type: keyring`. The keyring itself is opened when first used, so a host
/// that never touches credentials needs none, and one that does gets an error naming
/// the stores tried.
///
/// # Errors
/// `InvalidInput` for a store name that is not one of [`KeyringChoice::ALLOWED`].
pub fn open(config: &Config) -> storage_ports::Result<storage_ports::StoreSet> {
    let choice = KeyringChoice::parse(&config.store)?;
    Ok(KeyringStore::lazy(choice).store_set())
}
