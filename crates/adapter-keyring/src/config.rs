//! The settings of the keyring backend (`credentials: { type: keyring, store: auto }`).
//! Unknown keys are refused.

use serde::Deserialize;

/// Keyring settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which OS store: `secret-service`, `keyutils` or `auto` (default: whichever
    /// answers first, never a silent fallback to a file).
    #[serde(default = "default_store")]
    pub store: String,
}

fn default_store() -> String {
    "auto".into()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: default_store(),
        }
    }
}
