//! The contract suite (C1-C5) on the Linux kernel keyutils store, in a fresh session
//! keyring (see `session/mod.rs`).

mod session;

use adapter_keyring::{KeyringChoice, KeyringStore};

fn main() -> std::process::ExitCode {
    if let Some(code) = session::reexec_in_session_keyring() {
        return code;
    }
    storage_contract::run("keyutils", || async {
        KeyringStore::open(KeyringChoice::Keyutils)
            .await
            .map(|s| s.store_set())
            .map_err(|e| e.to_string())
    })
}
