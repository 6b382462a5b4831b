//! A secret value (spec C4): redacted in Debug and Display, wiped from memory on drop,
//! readable only through [`Secret::expose`].

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// A credential's value. It has no `Serialize`, `Display` of the content or `Clone` into
/// a plain string: the only way to the bytes is an explicit call.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value; the caller's `String` moves in and is wiped on drop.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// A structured credential (C3): any serde value, kept as JSON inside the secret.
    ///
    /// # Errors
    /// `InvalidInput` when `value` cannot be serialized.
    pub fn from_json<T: Serialize>(value: &T) -> Result<Self> {
        serde_json::to_string(value)
            .map(Self::new)
            .map_err(|e| Error::invalid_input(format!("credential value is not serializable: {e}")))
    }

    /// Reads a structured credential back.
    ///
    /// # Errors
    /// `InvalidInput` when the secret is not JSON of type `T` (the message holds no value).
    pub fn to_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.0).map_err(|e| {
            Error::invalid_input(format!(
                "credential is not of the expected structure (at line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// The value. Call this only where the secret is handed to what needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes, safe to log.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(mut s: String) -> Self {
        let out = Self::new(std::mem::take(&mut s));
        s.zeroize();
        out
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Not constant-time: secrets are compared in tests, never to authenticate.
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
