//! A worked example of an outside adapter, compiled and run with the tests: the
//! smallest complete one, a credential store (C1-C5) over a map, with every other port
//! declared absent. An adapter author copies this shape: implement the ports you offer,
//! put `UnsupportedStore` in the others, state honest `Capabilities`, run
//! `storage_contract::run` from a `harness = false` test. See docs/adapter-guide.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use storage_ports::{
    Capabilities, CredentialKey, CredentialStore, Error, Health, Operations, Result, SchemaStatus,
    Secret, StoreSet, StoreStats, TenantId, UnsupportedStore,
};

const BACKEND: &str = "example-map";

/// The backend: secrets per (tenant, key). A real adapter holds a client here.
#[derive(Debug, Default, Clone)]
struct MapCredentials {
    map: Arc<Mutex<BTreeMap<(TenantId, CredentialKey), Secret>>>,
}

impl MapCredentials {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(TenantId, CredentialKey), Secret>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store_set(&self) -> StoreSet {
        let me = Arc::new(self.clone());
        let no = Arc::new(UnsupportedStore::new(BACKEND));
        StoreSet {
            workflows: no.clone(),
            runs: no.clone(),
            metrics: no.clone(),
            credentials: me.clone(),
            queue: no.clone(),
            schedules: no.clone(),
            documents: no.clone(),
            transactions: no.clone(),
            operations: me.clone(),
            job_transfer: no.clone(),
            metrics_transfer: no,
        }
    }
}

#[async_trait]
impl CredentialStore for MapCredentials {
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()> {
        self.lock()
            .insert((tenant.clone(), key.clone()), value.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret> {
        self.lock()
            .get(&(tenant.clone(), key.clone()))
            .cloned()
            // The message names the key, never the value (C4).
            .ok_or_else(|| Error::not_found(format!("no credential {key}")))
    }

    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        self.lock()
            .remove(&(tenant.clone(), key.clone()))
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("no credential {key}")))
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>> {
        let keys: BTreeSet<CredentialKey> = self
            .lock()
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, k)| k.clone())
            .collect();
        Ok(keys.into_iter().collect())
    }
}

#[async_trait]
impl Operations for MapCredentials {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none(BACKEND);
        c.credentials = true;
        c
    }

    async fn health(&self) -> Health {
        Health {
            backend: BACKEND.into(),
            ok: true,
            detail: "in-process map".into(),
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        Ok(StoreStats {
            credentials: self.list(tenant).await?.len() as u64,
            ..StoreStats::default()
        })
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(BACKEND, "schema migrations"))
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(BACKEND, "schema migrations"))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>> {
        Err(Error::unsupported(
            BACKEND,
            "listing tenants; name them explicitly",
        ))
    }
}

fn main() -> std::process::ExitCode {
    // One fresh store per behaviour; a server adapter would connect here and return
    // Err("... how to start the server ...") when it cannot.
    storage_contract::run(BACKEND, || async {
        Ok(MapCredentials::default().store_set())
    })
}
