//! The keyring credential store: which OS store, opened when first needed, and the
//! credential port on top of it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use keyring_core::{CredentialPersistence, CredentialStore, Error as KeyringError};
use storage_ports::{
    Capabilities, CredentialKey, Error, Health, Operations, Result, SchemaStatus, Secret, StoreSet,
    StoreStats, TenantId, UnsupportedStore,
};
use tokio::sync::OnceCell;

use crate::error::map_keyring_error;
use crate::index::{self, INDEX_USER};
use crate::BACKEND;

/// Which OS secret store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringChoice {
    /// The Secret Service over D-Bus (gnome-keyring, KeePassXC, KWallet's bridge).
    SecretService,
    /// The Linux kernel keyutils session keyring; keys do not survive a reboot.
    Keyutils,
    /// The first of the two that answers.
    Auto,
}

impl KeyringChoice {
    /// Allowed config values.
    pub const ALLOWED: &'static str = "secret-service, keyutils, auto";

    /// Parses a config value.
    ///
    /// # Errors
    /// `InvalidInput` naming the allowed values.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "secret-service" => Ok(Self::SecretService),
            "keyutils" => Ok(Self::Keyutils),
            "auto" => Ok(Self::Auto),
            other => Err(Error::invalid_input(format!(
                "{other:?} is not a keyring store; expected one of {}",
                Self::ALLOWED
            ))),
        }
    }

    /// The config name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::Auto => "auto",
        }
    }
}

/// An opened OS store and which one it is.
struct Opened {
    store: Arc<CredentialStore>,
    picked: KeyringChoice,
}

/// Credentials in the OS keyring. Clones share the store and the per-tenant locks.
#[derive(Clone)]
pub struct KeyringStore {
    choice: KeyringChoice,
    opened: Arc<OnceCell<Opened>>,
    locks: Arc<Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("choice", &self.choice)
            .field("picked", &self.opened.get().map(|o| o.picked))
            .finish()
    }
}

/// Opens one store and checks that it answers.
fn open_one(choice: KeyringChoice) -> std::result::Result<Opened, String> {
    let store: Arc<CredentialStore> = match choice {
        KeyringChoice::SecretService => {
            zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        KeyringChoice::Keyutils => {
            linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        KeyringChoice::Auto => return Err("auto is not a store".into()),
    };
    // A round trip that proves access: the Secret Service must answer a search (and
    // be unlocked); the kernel must let us write to the session keyring.
    let probe = match choice {
        KeyringChoice::SecretService => store
            .search(&HashMap::from([("service", "flowstore:probe")]))
            .map(|_| ()),
        _ => store
            .build("flowstore:probe", &probe_user(), None)
            .and_then(|e| e.set_password("probe").and_then(|()| e.delete_credential())),
    };
    probe.map_err(|e| e.to_string())?;
    Ok(Opened {
        store,
        picked: choice,
    })
}

/// A probe entry name no other opener uses at the same time.
fn probe_user() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("probe-{}-{n}-{nanos}", std::process::id())
}

fn open_choice(choice: KeyringChoice) -> Result<Opened> {
    let tried = match choice {
        KeyringChoice::Auto => vec![KeyringChoice::SecretService, KeyringChoice::Keyutils],
        one => vec![one],
    };
    let mut failures = Vec::new();
    for c in tried {
        match open_one(c) {
            Ok(o) => {
                tracing::info!(
                    store = c.as_str(),
                    "credentials: using the OS keyring store"
                );
                return Ok(o);
            }
            Err(why) => failures.push(format!("{}: {why}", c.as_str())),
        }
    }
    Err(Error::unavailable(format!(
        "no OS keyring answered (tried {}). Enable one: run a Secret Service in this D-Bus session \
         (e.g. `gnome-keyring-daemon --unlock --components=secrets`), or run in a kernel session \
         keyring (`keyctl session -`; its keys do not survive a reboot). flowstore never keeps \
         credentials anywhere else.",
        failures.join("; ")
    ))
    .with_operation("credentials.open"))
}

impl KeyringStore {
    /// A store that opens `choice` when first used, so that hosts which never touch
    /// credentials do not need a keyring. Use [`KeyringStore::open`] to fail early.
    #[must_use]
    pub fn lazy(choice: KeyringChoice) -> Self {
        Self {
            choice,
            opened: Arc::new(OnceCell::new()),
            locks: Arc::default(),
        }
    }

    /// Opens `choice` now and checks that it answers.
    ///
    /// # Errors
    /// `Unavailable` naming each store tried, why it failed and how to enable one.
    pub async fn open(choice: KeyringChoice) -> Result<Self> {
        let me = Self::lazy(choice);
        me.opened().await?;
        Ok(me)
    }

    async fn opened(&self) -> Result<&Opened> {
        let choice = self.choice;
        self.opened
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || open_choice(choice))
                    .await
                    .map_err(|e| Error::backend(format!("keyring task failed: {e}")))?
            })
            .await
    }

    /// The store in use (after `auto`, the one it picked), once opened.
    ///
    /// # Errors
    /// As [`KeyringStore::open`].
    pub async fn picked(&self) -> Result<KeyringChoice> {
        Ok(self.opened().await?.picked)
    }

    /// Whether credentials survive a reboot: false for the kernel keyutils store.
    ///
    /// # Errors
    /// As [`KeyringStore::open`].
    pub async fn survives_reboot(&self) -> Result<bool> {
        Ok(!matches!(
            self.opened().await?.store.persistence(),
            CredentialPersistence::UntilReboot
        ))
    }

    /// What this adapter offers: credentials.
    #[must_use]
    pub fn capabilities() -> Capabilities {
        let mut c = Capabilities::none(BACKEND);
        c.credentials = true;
        c
    }

    /// Every port: credentials from the keyring, the others `Unsupported`.
    #[must_use]
    pub fn store_set(&self) -> StoreSet {
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

    fn tenant_lock(&self, tenant: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(tenant.clone()).or_default().clone()
    }

    /// Runs blocking keyring work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CredentialStore, KeyringChoice) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let opened = self.opened().await?;
        let (store, picked) = (opened.store.clone(), opened.picked);
        tokio::task::spawn_blocking(move || f(store.as_ref(), picked))
            .await
            .map_err(|e| Error::backend(format!("keyring task failed: {e}")))?
    }
}

fn no_credential(key: &CredentialKey) -> Error {
    Error::not_found(format!("no credential {key}"))
}

/// The keys that really exist: enumerated where the store can (Secret Service), else
/// the index minus keys that are gone. Rewrites the index when it was wrong.
fn repaired_keys(
    store: &CredentialStore,
    picked: KeyringChoice,
    tenant: &TenantId,
) -> Result<BTreeSet<String>> {
    let listed = index::read(store, tenant)?;
    let truth: BTreeSet<String> = if picked == KeyringChoice::SecretService {
        let svc = index::service(tenant);
        let found = store
            .search(&HashMap::from([("service", svc.as_str())]))
            .map_err(|e| map_keyring_error(&e, "credentials.list"))?;
        let mut keys = BTreeSet::new();
        for e in found {
            let attrs = e
                .get_attributes()
                .map_err(|e| map_keyring_error(&e, "credentials.list"))?;
            if let Some(user) = attrs.get("username") {
                if user != INDEX_USER && CredentialKey::new(user.clone()).is_ok() {
                    keys.insert(user.clone());
                }
            }
        }
        keys
    } else {
        let mut keys = BTreeSet::new();
        for k in &listed {
            // Whether the key exists, without reading its value (keyutils finds the
            // key by its description).
            match index::entry(store, tenant, k)?.get_credential() {
                Ok(_) => {
                    keys.insert(k.clone());
                }
                Err(KeyringError::NoEntry) => {}
                Err(e) => return Err(map_keyring_error(&e, "credentials.list")),
            }
        }
        keys
    };
    if truth != listed {
        index::write(store, tenant, &truth)?;
    }
    Ok(truth)
}

#[async_trait]
impl storage_ports::CredentialStore for KeyringStore {
    async fn set(&self, tenant: &TenantId, key: &CredentialKey, value: &Secret) -> Result<()> {
        let lock = self.tenant_lock(tenant);
        let _held = lock.lock().await;
        let (t, k, v) = (tenant.clone(), key.clone(), value.clone());
        self.blocking(move |store, _| {
            let _other_processes = index::process_lock(&t)?;
            // The index learns of the key first: a crash in between leaves a listed key
            // that does not exist, which the next list drops.
            let mut keys = index::read(store, &t)?;
            if keys.insert(k.as_str().to_owned()) {
                index::write(store, &t, &keys)?;
            }
            index::entry(store, &t, k.as_str())?
                .set_password(v.expose())
                .map_err(|e| map_keyring_error(&e, "credentials.set"))
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, key: &CredentialKey) -> Result<Secret> {
        let (t, k) = (tenant.clone(), key.clone());
        self.blocking(
            move |store, _| match index::entry(store, &t, k.as_str())?.get_password() {
                Ok(v) => Ok(Secret::new(v)),
                Err(KeyringError::NoEntry) => Err(no_credential(&k)),
                Err(e) => Err(map_keyring_error(&e, "credentials.get")),
            },
        )
        .await
    }

    async fn delete(&self, tenant: &TenantId, key: &CredentialKey) -> Result<()> {
        let lock = self.tenant_lock(tenant);
        let _held = lock.lock().await;
        let (t, k) = (tenant.clone(), key.clone());
        self.blocking(move |store, _| {
            let _other_processes = index::process_lock(&t)?;
            let gone = match index::entry(store, &t, k.as_str())?.delete_credential() {
                Ok(()) => Ok(()),
                Err(KeyringError::NoEntry) => Err(no_credential(&k)),
                Err(e) => return Err(map_keyring_error(&e, "credentials.delete")),
            };
            // The index forgets the key after it is gone (or was never there).
            let mut keys = index::read(store, &t)?;
            if keys.remove(k.as_str()) {
                index::write(store, &t, &keys)?;
            }
            gone
        })
        .await
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<CredentialKey>> {
        let lock = self.tenant_lock(tenant);
        let _held = lock.lock().await;
        let t = tenant.clone();
        self.blocking(move |store, picked| {
            let _other_processes = index::process_lock(&t)?;
            repaired_keys(store, picked, &t)?
                .into_iter()
                .map(|k| {
                    CredentialKey::new(k)
                        .map_err(|e| Error::corrupt(format!("listed credential key: {e}")))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl Operations for KeyringStore {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self) -> Health {
        match self.opened().await {
            Ok(o) => Health {
                backend: BACKEND.into(),
                ok: true,
                detail: match o.picked {
                    KeyringChoice::Keyutils => {
                        "kernel keyutils session keyring answers (its keys do not survive a reboot)"
                            .into()
                    }
                    _ => "Secret Service answers".into(),
                },
            },
            Err(e) => Health {
                backend: BACKEND.into(),
                ok: false,
                detail: e.to_string(),
            },
        }
    }

    /// Counts the tenant's credentials. With no keyring answering, counts none rather
    /// than failing the stats of every other concern; `health` says what is wrong, so
    /// this only leaves a debug record (a warning here printed a log record into every
    /// `flowstore stats` and demo on a machine without a keyring).
    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let credentials = match storage_ports::CredentialStore::list(self, tenant).await {
            Ok(keys) => keys.len() as u64,
            Err(e) if e.kind() == storage_ports::ErrorKind::Unavailable => {
                tracing::debug!(error = %e, "credentials not counted");
                0
            }
            Err(e) => return Err(e),
        };
        Ok(StoreStats {
            credentials,
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
