//! The errors each port promises, written once so that every backend reports the same
//! condition with the same kind and the same words. Messages name ids, never values.

use crate::error::Error;
use crate::ids::{CollectionName, CredentialKey, DocumentId, JobId, QueueName, RunId, WorkflowId};

/// `NotFound`: no such version of a workflow (W6, W8).
#[must_use]
pub fn workflow_version_missing(id: &WorkflowId, version: u32) -> Error {
    Error::not_found(format!("workflow {id} has no version {version}"))
}

/// `NotFound`: no run with this id (E8).
#[must_use]
pub fn run_missing(run: &RunId) -> Error {
    Error::not_found(format!("no run {run}"))
}

/// `AlreadyExists`: a run with this id exists (E4).
#[must_use]
pub fn run_taken(run: &RunId) -> Error {
    Error::already_exists(format!("run {run} already exists"))
}

/// `Immutable`: an append or finish after the finish (E3).
#[must_use]
pub fn run_finished(run: &RunId) -> Error {
    Error::immutable(format!("run {run} is finished; its log is immutable"))
}

/// `AlreadyExists`: a job with this id exists in the queue (Q1, O4).
#[must_use]
pub fn job_taken(job: &JobId, queue: &QueueName) -> Error {
    Error::already_exists(format!("job {job} already exists in queue {queue}"))
}

/// `NotFound`: no document with this id in the collection (D1).
#[must_use]
pub fn document_missing(collection: &CollectionName, id: &DocumentId) -> Error {
    Error::not_found(format!("no document {id} in collection {collection}"))
}

/// `AlreadyExists`: a document with this id exists in the collection (D1).
#[must_use]
pub fn document_taken(collection: &CollectionName, id: &DocumentId) -> Error {
    Error::already_exists(format!(
        "document {id} already exists in collection {collection}"
    ))
}

/// `PreconditionFailed`: a replace or delete expected another revision (D1).
#[must_use]
pub fn stale_revision(id: &DocumentId, expected: u64, actual: u64) -> Error {
    Error::precondition_failed(format!(
        "document {id} is at revision {actual}, not the expected {expected}"
    ))
}

/// `NotFound`: no credential under this key (C1).
#[must_use]
pub fn credential_missing(key: &CredentialKey) -> Error {
    Error::not_found(format!("no credential {key}"))
}

/// The same failure again, for each of the callers a batch served: a group commit
/// whose transaction failed tells every writer in it, and [`Error`] is not `Clone`
/// (its source is a driver's error). Kind, message and retry status are kept.
#[must_use]
pub fn batch_failed(e: &Error, operation: &'static str) -> Error {
    let copy = Error::new(e.kind(), e.message()).with_operation(operation);
    if e.is_retryable() {
        copy.temporary()
    } else {
        copy.permanent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn id<T: TryFrom<String, Error = Error>>(s: &str) -> T {
        match T::try_from(s.to_owned()) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn each_condition_has_its_kind_and_names_its_ids() {
        let (wf, run, job, q) = (
            id::<WorkflowId>("etl"),
            id::<RunId>("r1"),
            id::<JobId>("j1"),
            id::<QueueName>("q1"),
        );
        let (c, d, key) = (
            id::<CollectionName>("c1"),
            id::<DocumentId>("d1"),
            id::<CredentialKey>("k1"),
        );
        let cases = [
            (workflow_version_missing(&wf, 3), ErrorKind::NotFound, "etl"),
            (run_missing(&run), ErrorKind::NotFound, "r1"),
            (run_taken(&run), ErrorKind::AlreadyExists, "r1"),
            (run_finished(&run), ErrorKind::Immutable, "r1"),
            (job_taken(&job, &q), ErrorKind::AlreadyExists, "q1"),
            (document_missing(&c, &d), ErrorKind::NotFound, "c1"),
            (document_taken(&c, &d), ErrorKind::AlreadyExists, "d1"),
            (
                stale_revision(&d, 1, 2),
                ErrorKind::PreconditionFailed,
                "d1",
            ),
            (credential_missing(&key), ErrorKind::NotFound, "k1"),
        ];
        for (e, kind, names) in cases {
            assert_eq!(e.kind(), kind, "{e}");
            assert!(e.message().contains(names), "{e}");
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
