//! Object storage for flowstore: S3-compatible buckets through arrow-rs
//! `object_store`, with writes that never overwrite an object they did not see.
//!
//! This is not the backend of a port (a bucket has no queries, no transactions): it
//! moves whole objects. `storage-wiring` builds on it to keep a SQLite database in a
//! bucket, and to write archives and backups there.

pub mod bucket;
pub mod config;
pub mod errors;
pub mod location;
pub mod remote_file;

pub use bucket::{Bucket, ObjectVersion};
pub use config::ObjectStoreConfig;
pub use location::ObjectLocation;
pub use remote_file::RemoteFile;
