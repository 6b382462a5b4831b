//! The contract suite (C1-C5) on the Linux kernel keyutils store.
//!
//! The kernel keeps keys in the caller's session keyring. An inherited one may refuse
//! us (another user's, or none), so this binary re-runs itself under
//! `keyctl session -` (Debian package `keyutils`): a fresh session keyring that all of
//! its threads share, discarded when it exits.

use adapter_keyring::{KeyringChoice, KeyringStore};

const JOINED: &str = "FLOWSTORE_TEST_KEYUTILS_SESSION";

fn main() -> std::process::ExitCode {
    if std::env::var_os(JOINED).is_none() {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("cannot find this test binary: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        return match std::process::Command::new("keyctl")
            .args(["session", "-"])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(JOINED, "1")
            .status()
        {
            Ok(s) if s.success() => std::process::ExitCode::SUCCESS,
            Ok(_) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("cannot run `keyctl session -` ({e}): install it with `apt-get install keyutils`, or run `cargo xtask test`, which does");
                std::process::ExitCode::FAILURE
            }
        };
    }
    storage_contract::run("keyutils", || async {
        KeyringStore::open(KeyringChoice::Keyutils)
            .await
            .map(|s| s.store_set())
            .map_err(|e| e.to_string())
    })
}
