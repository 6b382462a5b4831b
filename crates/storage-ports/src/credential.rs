//! The credentials port (spec C1-C5): secrets in an OS keyring or a peer, never in
//! files or databases.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{CredentialKey, TenantId};
use crate::secret::Secret;

/// Named secrets per tenant.
///
/// # Behavior
/// - `get`/`delete` of a missing key is not-found (C1).
/// - `list` returns exactly the keys that exist, also after restarts and concurrent
///   sets and deletes (C2).
/// - Errors and logs never contain a value (C4); tenants are isolated (C5).
#[async_trait]
pub trait CredentialStore: Send + Sync + std::fmt::Debug {
    /// Sets or overwrites a secret.
    ///
    /// # Errors
    /// Backend errors.
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()>;

    /// Reads a secret.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret>;

    /// Deletes a secret.
    ///
    /// # Errors
    /// `NotFound`.
    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()>;

    /// The tenant's keys, sorted; never values.
    ///
    /// # Errors
    /// Backend errors.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>>;
}

impl crate::operation::Operation {
    /// [`CredentialStore::set`]: setting the same value twice is one set.
    pub const CREDENTIALS_SET: Self = Self::new(
        "credentials.set",
        crate::operation::Port::Credentials,
        crate::operation::Repeat::Safe,
    );
    /// [`CredentialStore::get`].
    pub const CREDENTIALS_GET: Self = Self::new(
        "credentials.get",
        crate::operation::Port::Credentials,
        crate::operation::Repeat::Safe,
    );
    /// [`CredentialStore::delete`]: a repeat after an unseen success answers `NotFound`.
    pub const CREDENTIALS_DELETE: Self = Self::new(
        "credentials.delete",
        crate::operation::Port::Credentials,
        crate::operation::Repeat::Never,
    );
    /// [`CredentialStore::list`].
    pub const CREDENTIALS_LIST: Self = Self::new(
        "credentials.list",
        crate::operation::Port::Credentials,
        crate::operation::Repeat::Safe,
    );
}
