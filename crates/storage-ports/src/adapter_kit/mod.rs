//! What every adapter needs and should not write again: the errors each port promises
//! (so that every backend says "no run r1" the same way and with the same kind), the
//! cursor kinds of each listing, conversions between stored integers and domain
//! integers, and URL redaction for messages and logs.
//!
//! Outside adapter authors use it too: a backend built on these helpers gives the
//! errors the contract suite checks.

pub mod convert;
pub mod cursors;
pub mod damaged;
pub mod errors;
pub mod history;
pub mod redact;
pub mod run_wakes;
pub mod unit;

pub use convert::{stored_id, stored_u32, to_i64};
pub use damaged::readable;
pub use redact::{is_secret_name, redact_url};
