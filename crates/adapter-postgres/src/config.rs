//! The settings of the PostgreSQL backend, as a host writes them in YAML under a
//! concern (`runs: { type: postgres, url: ..., max_connections: 32 }`) or sets them
//! with `FLOWSTORE_<CONCERN>__<KEY>`. Unknown keys are refused; the URL's password is
//! never shown by `Debug`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use storage_ports::adapter_kit::redact_url;
use storage_ports::{Error, Result};

/// PostgreSQL settings.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgres://user:password@host:port/db`. Required.
    pub url: String,
    /// Most connections this node opens (default 16).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a call waits for a connection, including connecting, before
    /// `Unavailable` (default 10000 ms).
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` for flowstore's connections, in milliseconds
    /// (default: none, the server's setting).
    #[serde(default)]
    pub statement_timeout_ms: Option<u64>,
    /// The schema that holds flowstore's tables and its migration history
    /// (`<schema>._flowstore_migrations`), apart from the host's (default
    /// `flowstore`).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// TLS: `disable` or `prefer` (default). This build has no TLS library, so
    /// `require`, `verify-ca` and `verify-full` are refused when the store opens
    /// rather than failing at the first connection.
    #[serde(default = "default_ssl_mode")]
    pub ssl_mode: String,
}

fn default_max_connections() -> u32 {
    16
}
fn default_acquire_timeout_ms() -> u64 {
    10_000
}
fn default_schema() -> String {
    "flowstore".into()
}
fn default_ssl_mode() -> String {
    "prefer".into()
}

impl Config {
    /// Settings for `url` with every default.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: default_max_connections(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
            statement_timeout_ms: None,
            schema: default_schema(),
            ssl_mode: default_ssl_mode(),
        }
    }

    /// The pool size.
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// The same settings with flowstore's tables in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The wait for a connection.
    #[must_use]
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// Checks what can be checked before connecting.
    ///
    /// # Errors
    /// `InvalidInput` naming the key: a pool of 0, a schema that is not a plain
    /// identifier, an unknown or unavailable TLS mode.
    pub fn validate(&self) -> Result<()> {
        crate::schema_home::validate(&self.schema)?;
        if self.max_connections == 0 {
            return Err(Error::invalid_input(
                "postgres max_connections must be at least 1",
            ));
        }
        match self.ssl_mode.as_str() {
            "disable" | "prefer" => Ok(()),
            "require" | "verify-ca" | "verify-full" => Err(Error::invalid_input(format!(
                "postgres ssl_mode {} needs TLS, which this build does not include; use disable or prefer, or connect through a TLS proxy",
                self.ssl_mode
            ))),
            other => Err(Error::invalid_input(format!(
                "postgres ssl_mode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("schema", &self.schema)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn debug_hides_the_password() {
        let c = Config::new("postgres://app:s3cret@db/flow?password=s3cret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db"), "{shown}");
    }

    #[test]
    fn settings_are_checked() {
        assert!(Config::new("postgres://db/x").validate().is_ok());
        let mut c = Config::new("postgres://db/x");
        c.ssl_mode = "require".into();
        assert!(c.validate().is_err());
        c.ssl_mode = "sometimes".into();
        assert!(c.validate().is_err());
        assert!(Config::new("postgres://db/x")
            .with_max_connections(0)
            .validate()
            .is_err());
    }
}
