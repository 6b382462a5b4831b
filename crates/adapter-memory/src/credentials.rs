//! Credentials in memory (C1-C5): for host unit tests; production uses the keyring.

use async_trait::async_trait;
use storage_ports::{CredentialKey, CredentialStore, Error, Result, Secret, TenantId};

use crate::MemoryStore;

fn missing(key: &CredentialKey) -> Error {
    Error::not_found(format!("no credential {key}"))
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()> {
        self.lock()
            .tenant(tenant)
            .credentials
            .insert(key.clone(), value.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret> {
        self.lock()
            .tenant(tenant)
            .credentials
            .get(key)
            .cloned()
            .ok_or_else(|| missing(key))
    }

    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        self.lock()
            .tenant(tenant)
            .credentials
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| missing(key))
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>> {
        Ok(self
            .lock()
            .tenant(tenant)
            .credentials
            .keys()
            .cloned()
            .collect())
    }
}
