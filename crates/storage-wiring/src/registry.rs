//! Backends by name: a [`Registry`] maps the `type` a configuration names to a
//! factory that opens it. [`Registry::builtin`] holds the adapters compiled in (one
//! cargo feature each); an outside crate adds its own with [`Registry::register`], and
//! a host then selects it in YAML (`runs: { type: mybackend, ... }`) without editing
//! storage-wiring. A factory receives the concern's settings (every key but `type`)
//! and deserializes them into its own `Config`, which refuses unknown keys.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use storage_ports::{Error, PayloadLimit, Result, StoreSet};

/// A concern's backend settings: every key of its configuration but `type`.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Settings(pub(crate) Map<String, Value>);

impl Settings {
    /// Settings from `pairs`.
    #[must_use]
    pub fn of<I: IntoIterator<Item = (String, Value)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The settings as the backend's own configuration type.
    ///
    /// # Errors
    /// `InvalidInput` naming the backend and what is wrong (an unknown key, a missing
    /// one, a value of the wrong type).
    pub fn parse<T: DeserializeOwned>(&self, backend: &str) -> Result<T> {
        serde_json::from_value(Value::Object(self.0.clone()))
            .map_err(|e| settings_error(backend, e))
    }

    /// One setting.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets one setting.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }

    /// The keys, for messages.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for Settings {
    /// Keys with their values, except that a URL shows without its passwords and a
    /// key named like a secret shows no value at all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            match v {
                _ if storage_ports::adapter_kit::is_secret_name(k) => m.entry(k, &"[redacted]"),
                Value::String(s) => m.entry(k, &storage_ports::adapter_kit::redact_url(s)),
                other => m.entry(k, other),
            };
        }
        m.finish()
    }
}

/// `InvalidInput`: the settings of `backend` are wrong, for the reason `why` (which
/// names the key in backquotes, as serde does: "missing field `url`"). Factories use
/// it for checks of their own, so that the wiring reports them as settings errors.
pub fn settings_error(backend: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid_input(why.to_string()).with_context(SETTINGS, backend)
}

/// The context key that marks a settings error.
const SETTINGS: &str = "settings_of";

/// Whether `e` came from [`settings_error`].
pub(crate) fn is_settings_error(e: &Error) -> bool {
    e.context().iter().any(|(k, _)| *k == SETTINGS)
}

/// What every backend is opened with, whatever its type.
#[derive(Debug, Clone, Copy)]
pub struct OpenContext {
    /// The largest payload (N4), from `payload_limit_bytes`.
    pub payload_limit: PayloadLimit,
}

/// The future of opening a backend.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<StoreSet>> + Send>>;

type Factory = Arc<dyn Fn(Settings, OpenContext) -> OpenFuture + Send + Sync>;

/// Backend names and the factories that open them.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl Registry {
    /// No backends at all.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The adapters compiled into this build: memory, fs, sqlite, postgres, redis and
    /// keyring, each behind the cargo feature of its name.
    #[must_use]
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut r = Self::empty();
        #[cfg(feature = "memory")]
        r.register("memory", |s, ctx| {
            Box::pin(async move {
                let c: adapter_memory::Config = s.parse("memory")?;
                Ok(adapter_memory::open(&c, ctx.payload_limit))
            })
        });
        #[cfg(feature = "fs")]
        r.register("fs", |s, ctx| {
            Box::pin(async move {
                let c: adapter_fs::Config = s.parse("fs")?;
                adapter_fs::open(&c, ctx.payload_limit)
            })
        });
        #[cfg(feature = "sqlite")]
        r.register("sqlite", |s, ctx| {
            Box::pin(async move {
                let c: adapter_sqlite::Config = s.parse("sqlite")?;
                adapter_sqlite::open(&c, ctx.payload_limit).await
            })
        });
        #[cfg(feature = "postgres")]
        r.register("postgres", |s, ctx| {
            Box::pin(async move {
                let c: adapter_postgres::Config = s.parse("postgres")?;
                adapter_postgres::open(&c, ctx.payload_limit).await
            })
        });
        #[cfg(feature = "redis")]
        r.register("redis", |s, ctx| {
            Box::pin(async move {
                let c: adapter_redis::Config = s.parse("redis")?;
                adapter_redis::open(&c, ctx.payload_limit).await
            })
        });
        #[cfg(feature = "keyring")]
        r.register("keyring", |s, _| {
            Box::pin(async move {
                let c: adapter_keyring::Config = s.parse("keyring")?;
                adapter_keyring::open(&c)
                    .map_err(|e| settings_error("keyring", format!("`store`: {}", e.message())))
            })
        });
        r
    }

    /// Adds (or replaces) the backend `name`.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn(Settings, OpenContext) -> OpenFuture + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(name.into(), Arc::new(factory));
        self
    }

    /// Whether `name` is registered.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// The registered names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Opens the backend `name` with `settings`, or `None` when `name` is not
    /// registered.
    pub(crate) fn open(
        &self,
        name: &str,
        settings: Settings,
        ctx: OpenContext,
    ) -> Option<OpenFuture> {
        self.factories.get(name).map(|f| f(settings, ctx))
    }
}

/// Backends flowstore ships, whether or not this build includes them: a name from this
/// list that is not registered is a missing cargo feature, not a typo.
pub(crate) const SHIPPED: [&str; 6] = ["memory", "fs", "sqlite", "postgres", "redis", "keyring"];
