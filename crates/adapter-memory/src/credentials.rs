//! Credentials in memory (C1-C5): for host unit tests; production uses the keyring.

use async_trait::async_trait;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{CredentialKey, CredentialStore, Result, Secret, TenantId};

use crate::MemoryStore;

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
            .ok_or_else(|| kit::credential_missing(key))
    }

    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        self.lock()
            .tenant(tenant)
            .credentials
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| kit::credential_missing(key))
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
