//! The contract suite on fs + PostgreSQL, chosen by config and environment (see
//! `wired/mod.rs`). T1 holds: runs and the queue share the server.

mod wired;

fn main() -> std::process::ExitCode {
    wired::run("postgres", "FLOWSTORE_TEST_POSTGRES_URL")
}
