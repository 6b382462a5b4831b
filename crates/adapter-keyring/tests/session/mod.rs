//! Runs a test binary inside a fresh kernel session keyring.
//!
//! The keyutils store writes to the caller's session keyring; an inherited one may
//! refuse us (another user's, or none). `keyctl session -` (Debian package `keyutils`)
//! runs a program in a new anonymous session keyring that all its threads share and
//! that is discarded when it exits. A binary calls [`reexec_in_session_keyring`] first
//! thing in `main`.

use std::process::ExitCode;

const JOINED: &str = "FLOWSTORE_TEST_KEYUTILS_SESSION";

/// `None` when already inside a fresh session keyring (go on); otherwise runs this
/// binary again under `keyctl session -` and returns its exit code.
pub fn reexec_in_session_keyring() -> Option<ExitCode> {
    if std::env::var_os(JOINED).is_some() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find this test binary: {e}");
            return Some(ExitCode::FAILURE);
        }
    };
    Some(
        match std::process::Command::new("keyctl")
            .args(["session", "-"])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(JOINED, "1")
            .status()
        {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("cannot run `keyctl session -` ({e}): install it with `apt-get install keyutils`, or run `cargo xtask test`, which does");
                ExitCode::FAILURE
            }
        },
    )
}
