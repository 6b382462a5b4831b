//! Rules every adapter applies, written once: pure functions and small value types.

pub mod aggregate;
pub mod backoff;
pub mod content_hash;
pub mod cursor;
pub mod filtered_listing;
pub mod hex;
pub mod lease;
pub mod limits;
pub mod poll_watch;
pub mod retention;
pub mod schedule;
pub mod sketch;
pub mod versioning;
