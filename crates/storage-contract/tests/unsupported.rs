//! The suite against a store that offers nothing: every gated behaviour must see the
//! `Unsupported` error kind, which proves the gating and the absent-capability checks.

use storage_ports::StoreSet;

fn main() -> std::process::ExitCode {
    storage_contract::run("unsupported", || async {
        Ok(StoreSet::unsupported("nothing"))
    })
}
