//! Version assignment (spec W2, W3, W5): the decision every adapter makes under its own
//! lock or transaction, written once.

use crate::error::{Error, Result};
use crate::ids::WorkflowId;
use crate::rules::content_hash::ContentHash;

/// What an adapter knows about a workflow when it stores a version.
#[derive(Debug, Clone, Copy)]
pub struct VersionState<'a> {
    /// The highest version ever assigned, deleted ones included (0 when none).
    pub high_water: u32,
    /// The hash of the requested version, when it is currently stored.
    pub existing: Option<&'a ContentHash>,
    /// Whether the parent named by the request is currently stored (`true` without one).
    pub parent_exists: bool,
}

/// What to do with a `put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutPlan {
    /// Store the definition as this version.
    Insert(u32),
    /// The same content is already stored as this version: return it (W2).
    AlreadyStored(u32),
}

/// Decides a `put` of `requested` (or the next version) with content `hash`.
///
/// # Errors
/// `InvalidInput` for version 0 or a missing parent; `PreconditionFailed` for other content at an
/// existing version or a deleted version (never reused).
pub fn plan_put(
    workflow: &WorkflowId,
    requested: Option<u32>,
    parent: Option<u32>,
    hash: &ContentHash,
    state: VersionState<'_>,
) -> Result<PutPlan> {
    if let Some(p) = parent {
        if !state.parent_exists {
            return Err(Error::invalid_input(format!(
                "parent version {p} of workflow {workflow} does not exist"
            )));
        }
        if requested.is_some_and(|v| p >= v) {
            return Err(Error::invalid_input(format!(
                "parent version {p} must be older than the version it is the parent of"
            )));
        }
    }
    let Some(v) = requested else {
        let next = state.high_water.checked_add(1).ok_or_else(|| {
            Error::precondition_failed(format!("workflow {workflow} has used every version number"))
        })?;
        return Ok(PutPlan::Insert(next));
    };
    if v == 0 {
        return Err(Error::invalid_input(
            "versions are positive integers; 0 is not one",
        ));
    }
    match state.existing {
        Some(h) if h == hash => Ok(PutPlan::AlreadyStored(v)),
        Some(_) => Err(Error::precondition_failed(format!(
            "version {v} of workflow {workflow} is stored with other content; versions are immutable"
        ))),
        None if v <= state.high_water => Err(Error::precondition_failed(format!(
            "version {v} of workflow {workflow} is not above the highest version ever assigned ({}); versions are never reused",
            state.high_water
        ))),
        None => Ok(PutPlan::Insert(v)),
    }
}

/// The next version up a lineage (W5) from `meta`: its parent, which must be lower
/// than its version. A parent that is not lower was written by something other than
/// flowstore (a hand-edited file, a changed row); following it could loop forever.
///
/// # Errors
/// `CorruptData` naming the workflow, the version and the parent.
pub fn parent_in_lineage(meta: &crate::workflow::VersionMeta) -> Result<Option<u32>> {
    match meta.parent {
        Some(p) if p >= meta.version => Err(Error::corrupt(format!(
            "version {} of workflow {} names parent {p}, which is not older; a lineage only goes to older versions (was it edited by hand?)",
            meta.version, meta.workflow_id
        ))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn every_put_decision() {
        let wf = WorkflowId::new("etl").unwrap_or_else(|e| panic!("{e}"));
        let (h, other) = (
            ContentHash::of(&serde_json::json!({"a": 1})),
            ContentHash::of(&serde_json::json!({"a": 2})),
        );
        let state = |high_water, existing, parent_exists| VersionState {
            high_water,
            existing,
            parent_exists,
        };
        // (requested, parent, state, expected plan or error kind)
        /// (requested, parent, state, the plan or the error kind).
        type Case<'a> = (
            Option<u32>,
            Option<u32>,
            VersionState<'a>,
            std::result::Result<PutPlan, ErrorKind>,
        );
        let cases: [Case<'_>; 9] = [
            (None, None, state(0, None, true), Ok(PutPlan::Insert(1))),
            (None, None, state(7, None, true), Ok(PutPlan::Insert(8))),
            (
                None,
                None,
                state(u32::MAX, None, true),
                Err(ErrorKind::PreconditionFailed),
            ),
            (Some(3), None, state(2, None, true), Ok(PutPlan::Insert(3))),
            (
                Some(2),
                None,
                state(2, Some(&h), true),
                Ok(PutPlan::AlreadyStored(2)),
            ),
            (
                Some(2),
                None,
                state(2, Some(&other), true),
                Err(ErrorKind::PreconditionFailed),
            ),
            (
                Some(2),
                None,
                state(5, None, true),
                Err(ErrorKind::PreconditionFailed),
            ),
            (
                Some(0),
                None,
                state(0, None, true),
                Err(ErrorKind::InvalidInput),
            ),
            (
                Some(4),
                Some(1),
                state(3, None, false),
                Err(ErrorKind::InvalidInput),
            ),
        ];
        for (i, (requested, parent, st, want)) in cases.into_iter().enumerate() {
            let got = plan_put(&wf, requested, parent, &h, st).map_err(|e| e.kind());
            assert_eq!(got, want, "case {i}");
        }
        // A parent must be older than its child.
        let e = plan_put(&wf, Some(2), Some(2), &h, state(1, None, true)).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    }
}
