//! # storage-contract
//!
//! The shared contract suite: one public async fn per behaviour stated in the
//! project's `docs/behaviours.md`, named after its id (W4, Q7...), each reported as its
//! own test. That document says what each id means, which error kind each failure
//! must have, and which capability gates it; a failing test names its section.
//! Any adapter, ours or an outside author's, runs it in a few lines:
//!
//! ```no_run
//! // tests/contract.rs, with `harness = false` in Cargo.toml
//! fn main() -> std::process::ExitCode {
//!     storage_contract::run("my-backend", || async {
//!         // Build a fresh handle per test; return Err(text) if the backend is missing.
//!         # let set: storage_ports::StoreSet = unimplemented!();
//!         Ok(set)
//!     })
//! }
//! ```
//!
//! Tests are gated by the adapter's [`Capabilities`](storage_ports::Capabilities): where a
//! capability is declared absent, the test of that behaviour instead checks that the
//! port answers with the `Unsupported` error kind. Every test uses fresh random tenants,
//! so many runs can share one server.

mod check;
pub mod crash;
mod credentials;
pub mod damage;
mod documents;
mod harness;
mod metrics;
pub mod model;
mod names;
mod operations;
mod queue;
mod queue_history;
mod queue_lifecycle;
mod queue_limits;
mod queue_unique;
mod runs;
pub mod scale;
mod schedules;
pub mod servers;
pub mod skew;
mod transactions;
mod units_of_work;
mod workflows;

pub use check::{Ctx, Failure, TestResult};
pub use credentials::*;
pub use documents::*;
pub use harness::{behaviours, run, Behaviour, Needs};
pub use metrics::*;
pub use names::*;
pub use operations::*;
pub use queue::*;
pub use queue_lifecycle::*;
pub use runs::*;
pub use transactions::*;
pub use workflows::*;
