//! The settings of the Redis backend, as a host writes them in YAML under a concern
//! (`queue: { type: redis, url: redis://cache:6379/2, key_prefix: engine-a }`) or sets
//! them with `FLOWSTORE_<CONCERN>__<KEY>`. Unknown keys are refused; the URL's password
//! is never shown by `Debug`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use storage_ports::adapter_kit::redact_url;
use storage_ports::{Error, Result};

/// Redis settings.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `redis://[:password@]host:port[/db]`. Required.
    pub url: String,
    /// The first part of every key (default `flowstore`): two deployments can share a
    /// server under different prefixes. Letters, digits, `_` and `-`, at most 32.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How long connecting may take (default 2000 ms).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long one command may take before `Unavailable` (default 10000 ms).
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
}

fn default_key_prefix() -> String {
    "flowstore".into()
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_response_timeout_ms() -> u64 {
    10_000
}

impl Config {
    /// Settings for `url` with every default.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: default_key_prefix(),
            connect_timeout_ms: default_connect_timeout_ms(),
            response_timeout_ms: default_response_timeout_ms(),
        }
    }

    /// The connect timeout.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The response timeout.
    #[must_use]
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    /// Checks the settings before connecting.
    ///
    /// # Errors
    /// `InvalidInput` for a key prefix that could break the key layout.
    pub fn validate(&self) -> Result<()> {
        let p = &self.key_prefix;
        if p.is_empty()
            || p.len() > 32
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::invalid_input(format!(
                "redis key_prefix {p:?} must be 1 to 32 letters, digits, _ or -"
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn prefixes_are_checked_and_passwords_hidden() {
        let mut c = Config::new("redis://:s3cret@h:6379/0");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(c.validate().is_ok());
        for bad in ["", "a:b", "{x}", "with space", &"x".repeat(33)] {
            c.key_prefix = bad.to_owned();
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
