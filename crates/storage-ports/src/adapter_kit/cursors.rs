//! The cursor kind of each listing. A cursor carries its kind, so a cursor of one
//! listing given to another is refused as invalid input instead of paging wrongly.

/// Workflow listings (W7).
pub const WORKFLOWS: &str = "workflows";
/// Run queries (E5).
pub const RUNS: &str = "runs";
/// Document listings (D1).
pub const DOCUMENTS: &str = "documents";
