//! C2 across processes: 4 processes (the CLI beside engines) set and delete keys of
//! one tenant at the same moment, on the Secret Service and on keyutils; afterwards
//! `list` equals exactly the keys that exist. The index is read, changed and written
//! by each; without the lock file beside it, processes overwrite each other's index
//! and keys drop out of `list` (keyutils cannot enumerate to find them again).
//!
//! The children are this binary again, in the same kernel session keyring and D-Bus
//! session.

mod session;

use std::collections::BTreeSet;

use adapter_keyring::{KeyringChoice, KeyringStore};
use libtest_mimic::{Arguments, Failed, Trial};
use storage_ports::{CredentialKey, CredentialStore, ErrorKind, Secret, TenantId};

const CHILD: &str = "FLOWSTORE_KEYRING_CHILD";
const PROCESSES: usize = 4;
const KEYS: usize = 30;

fn choice_named(name: &str) -> Result<KeyringChoice, String> {
    [KeyringChoice::SecretService, KeyringChoice::Keyutils]
        .into_iter()
        .find(|c| c.as_str() == name)
        .ok_or_else(|| format!("no keyring store {name}"))
}

fn key(n: usize) -> Result<CredentialKey, String> {
    CredentialKey::new(format!("shared-{n}")).map_err(|e| e.to_string())
}

/// One child: sets every key, then deletes the ones of its parity, in an order of
/// its own.
async fn child(choice: KeyringChoice, tenant: &TenantId, me: usize) -> Result<(), String> {
    let store = KeyringStore::open(choice)
        .await
        .map_err(|e| e.to_string())?;
    let order: Vec<usize> = (0..KEYS).map(|i| (i * 7 + me * 11) % KEYS).collect();
    for &n in &order {
        store
            .set(tenant, &key(n)?, &Secret::new(format!("value-{me}-{n}")))
            .await
            .map_err(|e| e.to_string())?;
    }
    for &n in order.iter().filter(|n| *n % PROCESSES == me) {
        match store.delete(tenant, &key(n)?).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

async fn parent(choice: KeyringChoice) -> Result<(), Failed> {
    if choice == KeyringChoice::SecretService
        && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
    {
        return Err("DBUS_SESSION_BUS_ADDRESS is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` and export what it prints".into());
    }
    let tenant = TenantId::new(format!("t{}", storage_ports::RunId::generate()))
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let children: Vec<std::process::Child> = (0..PROCESSES)
        .map(|me| {
            std::process::Command::new(&exe)
                .env(CHILD, format!("{} {} {me}", choice.as_str(), tenant))
                .spawn()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for mut c in children {
        let status = c.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a child process failed: {status}").into());
        }
    }
    let store = KeyringStore::open(choice)
        .await
        .map_err(|e| e.to_string())?;
    let listed: BTreeSet<String> = store
        .list(&tenant)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|k| k.to_string())
        .collect();
    let mut truth = BTreeSet::new();
    for n in 0..KEYS {
        let k = key(n)?;
        match store.get(&tenant, &k).await {
            Ok(_) => {
                truth.insert(k.to_string());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string().into()),
        }
    }
    // A slower child may set a key after a faster one deleted it, so which keys exist
    // is not fixed; that `list` is exactly them is.
    if listed != truth {
        return Err(format!("list {listed:?} differs from the keys that exist {truth:?}").into());
    }
    for k in &truth {
        store
            .delete(
                &tenant,
                &CredentialKey::new(k.clone()).map_err(|e| e.to_string())?,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::from(e.to_string()))
}

fn main() -> std::process::ExitCode {
    if let Ok(spec) = std::env::var(CHILD) {
        let parts: Vec<&str> = spec.split(' ').collect();
        let run = || -> Result<(), String> {
            let [name, tenant, me] = parts.as_slice() else {
                return Err(format!("bad {CHILD}: {spec}"));
            };
            let choice = choice_named(name)?;
            let tenant = TenantId::new(*tenant).map_err(|e| e.to_string())?;
            let me: usize = me.parse().map_err(|e| format!("{e}"))?;
            runtime()
                .map_err(|e| format!("{e:?}"))?
                .block_on(child(choice, &tenant, me))
        };
        return match run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(code) = session::reexec_in_session_keyring() {
        return code;
    }
    let trials = [KeyringChoice::SecretService, KeyringChoice::Keyutils]
        .into_iter()
        .map(|choice| {
            Trial::test(
                format!("{}::c2_list_exact_after_4_processes", choice.as_str()),
                move || runtime()?.block_on(parent(choice)),
            )
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}
