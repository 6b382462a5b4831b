//! The contract suite (C1-C5) on the Secret Service, through a real gnome-keyring
//! daemon on a private D-Bus session bus.
//!
//! `cargo xtask test` starts the bus and the unlocked daemon and exports
//! `DBUS_SESSION_BUS_ADDRESS`. Without a bus, every test fails and says how to start one.

use adapter_keyring::{KeyringChoice, KeyringStore};

fn main() -> std::process::ExitCode {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    storage_contract::run("secret-service", move || {
        let bus = bus.clone();
        async move {
            if bus.is_none() {
                return Err("DBUS_SESSION_BUS_ADDRESS is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` (it starts a D-Bus session with an unlocked gnome-keyring) and export what it prints".to_owned());
            }
            KeyringStore::open(KeyringChoice::SecretService)
                .await
                .map(|s| s.store_set())
                .map_err(|e| e.to_string())
        }
    })
}
