//! `object_store` errors as flowstore errors: a kind the host can branch on, the
//! object named, the driver's error kept as the source, never a secret.

use object_store::Error as StoreError;
use storage_ports::Error;

use crate::location::ObjectLocation;

/// The driver's message, for errors built around it.
#[must_use]
pub fn describe(e: &StoreError) -> String {
    e.to_string()
}

/// Maps an error of `op` on the object `at`.
#[must_use]
pub fn map(e: StoreError, op: &'static str, at: &ObjectLocation) -> Error {
    let err = match &e {
        StoreError::NotFound { .. } => Error::not_found(format!(
            "no object {at} (or no bucket {}): create the bucket, or check the name",
            at.bucket()
        )),
        // `If-None-Match: *` on an object that exists, or `If-Match` on a version that
        // is no longer the object's: S3 answers 412 to both.
        StoreError::AlreadyExists { .. } | StoreError::Precondition { .. } => {
            Error::precondition_failed(format!(
                "{at} was written by someone else since it was read; nothing was overwritten"
            ))
        }
        StoreError::PermissionDenied { .. } | StoreError::Unauthenticated { .. } => {
            Error::backend(format!(
                "the object store refused the credentials for bucket {} (check the access key and its rights)",
                at.bucket()
            ))
            .permanent()
        }
        StoreError::NotSupported { .. } | StoreError::NotImplemented => Error::backend(format!(
            "the object store of bucket {} does not support conditional writes, which flowstore needs",
            at.bucket()
        ))
        .permanent(),
        // What is left is the network or the service failing (after the client's own
        // retries): worth trying again.
        _ => Error::unavailable(format!(
            "the object store did not answer for {at}; it may be down or unreachable"
        )),
    };
    err.with_operation(op).with_source(e)
}
