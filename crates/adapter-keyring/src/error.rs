//! keyring-core errors mapped to kinds. A message never carries a secret: the one
//! error that holds secret bytes (`BadEncoding`) is described, never formatted.

use keyring_core::Error as KeyringError;
use storage_ports::Error;

/// Maps a keyring error raised by `operation`.
pub(crate) fn map_keyring_error(e: &KeyringError, operation: &'static str) -> Error {
    let err = match e {
        KeyringError::NoEntry => Error::not_found("no such credential"),
        KeyringError::NoStorageAccess(p) => {
            Error::unavailable(format!("the keyring cannot be reached: {p}"))
        }
        KeyringError::PlatformFailure(p) => Error::unavailable(format!("the keyring failed: {p}")),
        KeyringError::BadEncoding(_) => Error::corrupt("a stored credential is not UTF-8 text"),
        KeyringError::BadDataFormat(_, _) => Error::corrupt("a stored credential is malformed"),
        KeyringError::BadStoreFormat(why) => {
            Error::corrupt(format!("the keyring's data is malformed: {why}"))
        }
        KeyringError::TooLong(what, max) => Error::invalid_input(format!(
            "the credential's {what} is longer than this keyring allows ({max})"
        )),
        KeyringError::Invalid(what, why) => {
            Error::invalid_input(format!("invalid credential {what}: {why}"))
        }
        KeyringError::Ambiguous(entries) => Error::corrupt(format!(
            "{} keyring items match one credential; remove the extra ones with your keyring tool",
            entries.len()
        )),
        KeyringError::NotSupportedByStore(why) => Error::unsupported(crate::BACKEND, why),
        other => Error::backend(format!("keyring: {other}")),
    };
    err.with_operation(operation)
}
