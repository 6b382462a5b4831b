//! The contract suite on fs + Redis, chosen by config and environment (see
//! `wired/mod.rs`). T1 is checked to answer Unsupported: Redis does not offer it.

mod wired;

fn main() -> std::process::ExitCode {
    wired::run("redis", "FLOWSTORE_TEST_REDIS_URL")
}
