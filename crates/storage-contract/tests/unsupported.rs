//! The suite against a store that offers nothing: every gated behaviour must see the
//! `Unsupported` error kind, which proves the gating and the absent-capability checks.

use std::sync::Arc;

use storage_ports::{StoreSet, UnsupportedStore};

fn main() -> std::process::ExitCode {
    storage_contract::run("unsupported", || async {
        let u = Arc::new(UnsupportedStore::new("nothing"));
        Ok(StoreSet {
            workflows: u.clone(),
            runs: u.clone(),
            metrics: u.clone(),
            credentials: u.clone(),
            queue: u.clone(),
            documents: u.clone(),
            transactions: u.clone(),
            operations: u,
        })
    })
}
