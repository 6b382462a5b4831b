//! The credential index under concurrency and after drift, on both real stores.
//!
//! - C2 at scale: 8 tasks set and delete 200 shared keys in interleaved orders;
//!   afterwards `list` equals exactly the keys that exist (each checked with `get`).
//! - Drift: a key deleted behind flowstore's back disappears from `list`; on the Secret
//!   Service, which can enumerate, a key written behind its back or a damaged index is
//!   found again.
//!
//! Runs inside a fresh kernel session keyring (see `session/mod.rs`); the Secret Service
//! tests need the D-Bus session that `cargo xtask test` starts.

mod session;

use std::collections::BTreeSet;
use std::sync::Arc;

use adapter_keyring::{KeyringChoice, KeyringStore};
use libtest_mimic::{Arguments, Failed, Trial};
use storage_ports::{CredentialKey, CredentialStore, ErrorKind, Secret, TenantId};

type Outcome = Result<(), Failed>;

fn tenant() -> Result<TenantId, Failed> {
    TenantId::new(format!("t{}", storage_ports::RunId::generate()))
        .map_err(|e| e.to_string().into())
}

async fn open(choice: KeyringChoice) -> Result<KeyringStore, Failed> {
    if choice == KeyringChoice::SecretService
        && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
    {
        return Err("DBUS_SESSION_BUS_ADDRESS is not set: run `cargo xtask test`, or start the servers with `cargo xtask services` and export what it prints".into());
    }
    KeyringStore::open(choice)
        .await
        .map_err(|e| e.to_string().into())
}

/// The raw OS store, to change things behind flowstore's back.
fn raw(choice: KeyringChoice) -> Result<Arc<keyring_core::CredentialStore>, Failed> {
    let store: Arc<keyring_core::CredentialStore> = match choice {
        KeyringChoice::SecretService => {
            zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        _ => linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?,
    };
    Ok(store)
}

async fn concurrent_sets_and_deletes(choice: KeyringChoice) -> Outcome {
    let store = open(choice).await?;
    let t = tenant()?;
    let keys: Vec<CredentialKey> = (0..200)
        .map(|i| CredentialKey::new(format!("k{i:03}")))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for w in 0..8_usize {
        let (store, t, keys) = (store.clone(), t.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            // Each task walks all keys in its own order, setting most and deleting some,
            // so tasks race on the same keys.
            for step in 0..keys.len() {
                let k = &keys[(step * (2 * w + 1) + w * 7) % keys.len()];
                if (step + w) % 3 == 0 {
                    match store.delete(&t, k).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(e.to_string()),
                    }
                } else {
                    store
                        .set(&t, k, &Secret::new(format!("value-{w}-{step}")))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let mut exist = BTreeSet::new();
    for k in &keys {
        match store.get(&t, k).await {
            Ok(_) => {
                exist.insert(k.clone());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string().into()),
        }
    }
    let listed: BTreeSet<CredentialKey> = store
        .list(&t)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    if listed != exist {
        return Err(format!(
            "list differs from what exists: listed-only {:?}, existing-only {:?}",
            listed.difference(&exist).collect::<Vec<_>>(),
            exist.difference(&listed).collect::<Vec<_>>()
        )
        .into());
    }
    if exist.is_empty() {
        return Err("no key survived; the test proves nothing".into());
    }
    eprintln!(
        "{}: {} of 200 keys exist and list shows exactly those",
        choice.as_str(),
        exist.len()
    );
    for k in &exist {
        store.delete(&t, k).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn drift_is_repaired(choice: KeyringChoice) -> Outcome {
    let store = open(choice).await?;
    let raw = raw(choice)?;
    let t = tenant()?;
    let service = format!("flowstore:{t}");
    let (a, b) = (
        CredentialKey::new("a").map_err(|e| e.to_string())?,
        CredentialKey::new("b").map_err(|e| e.to_string())?,
    );
    store
        .set(&t, &a, &Secret::new("1".into()))
        .await
        .map_err(|e| e.to_string())?;
    store
        .set(&t, &b, &Secret::new("2".into()))
        .await
        .map_err(|e| e.to_string())?;
    // Deleted behind our back: listed no more.
    let raw2 = raw.clone();
    let svc = service.clone();
    tokio::task::spawn_blocking(move || {
        raw2.build(&svc, "a", None)
            .and_then(|e| e.delete_credential())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let listed = store.list(&t).await.map_err(|e| e.to_string())?;
    if listed != vec![b.clone()] {
        return Err(format!("after a delete behind flowstore's back, list is {listed:?}").into());
    }
    if choice == KeyringChoice::SecretService {
        // Written behind our back, and the index damaged: enumeration finds the truth.
        let raw2 = raw.clone();
        let svc = service.clone();
        tokio::task::spawn_blocking(move || {
            raw2.build(&svc, "c", None)?.set_password("3")?;
            raw2.build(&svc, "flowstore index", None)?
                .set_password("{not json")
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let listed: Vec<String> = store
            .list(&t)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(ToString::to_string)
            .collect();
        if listed != ["b", "c"] {
            return Err(format!("after drift, list is {listed:?}; expected b and c").into());
        }
        store
            .delete(&t, &CredentialKey::new("c").map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
    }
    store.delete(&t, &b).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn trial<F, Fut>(name: &str, choice: KeyringChoice, f: F) -> Trial
where
    F: FnOnce(KeyringChoice) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Outcome>,
{
    Trial::test(format!("{}::{name}", choice.as_str()), move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Failed::from(e.to_string()))?
            .block_on(f(choice))
    })
}

fn main() -> std::process::ExitCode {
    if let Some(code) = session::reexec_in_session_keyring() {
        return code;
    }
    let mut trials = Vec::new();
    for choice in [KeyringChoice::SecretService, KeyringChoice::Keyutils] {
        trials.push(trial(
            "c2_list_exact_after_8_tasks_on_200_keys",
            choice,
            concurrent_sets_and_deletes,
        ));
        trials.push(trial(
            "c2_index_repaired_after_drift",
            choice,
            drift_is_repaired,
        ));
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}
