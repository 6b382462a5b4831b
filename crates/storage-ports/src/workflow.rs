//! The workflow-definition port (spec W1-W10): small, versioned, immutable documents
//! with lineage.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::ids::{TenantId, WorkflowId};
use crate::rules::content_hash::ContentHash;
use crate::rules::cursor::{Page, PageRequest};
use crate::time::Timestamp;

/// A version to store. Without `version` the store assigns the next one (W3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewWorkflowVersion {
    /// Which workflow.
    pub workflow_id: WorkflowId,
    /// An explicit version, or `None` for the next.
    pub version: Option<u32>,
    /// The version of the same workflow this one came from (W5); it must exist.
    pub parent: Option<u32>,
    /// Who wrote it, free text.
    pub author: Option<String>,
    /// When it was created; `None` means now. Imports pass the source's time.
    pub created_at: Option<Timestamp>,
    /// The definition, any JSON-model value.
    pub definition: Value,
}

impl NewWorkflowVersion {
    /// The next version of `workflow_id` with `definition`, no parent.
    #[must_use]
    pub fn next(workflow_id: WorkflowId, definition: Value) -> Self {
        Self {
            workflow_id,
            version: None,
            parent: None,
            author: None,
            created_at: None,
            definition,
        }
    }

    /// Sets the parent version.
    #[must_use]
    pub fn with_parent(mut self, parent: u32) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Sets an explicit version.
    #[must_use]
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }

    /// The version as stored under number `version`, with its content hash; the
    /// creation time defaults to now.
    #[must_use]
    pub fn into_stored(self, version: u32, content_hash: ContentHash) -> WorkflowVersion {
        WorkflowVersion {
            meta: VersionMeta {
                workflow_id: self.workflow_id,
                version,
                parent: self.parent,
                author: self.author,
                created_at: self.created_at.unwrap_or_else(Timestamp::now),
                content_hash,
            },
            definition: self.definition,
        }
    }

    /// Sets the author.
    #[must_use]
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }
}

/// Everything about a stored version except its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// Which workflow.
    pub workflow_id: WorkflowId,
    /// Positive, never reused.
    pub version: u32,
    /// The version it came from.
    pub parent: Option<u32>,
    /// Who wrote it.
    pub author: Option<String>,
    /// When it was first stored.
    pub created_at: Timestamp,
    /// Digest of the definition's canonical form (W1).
    pub content_hash: ContentHash,
}

/// A stored version with its definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowVersion {
    /// Metadata.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// The definition as stored.
    pub definition: Value,
}

/// Definitions: immutable versions with lineage.
///
/// # Behavior
/// - `put` of an existing version with identical content returns it (idempotent); with
///   other content it is `PreconditionFailed` (W2). Versions are never reused (W3).
/// - Concurrent `put`s without a version all succeed with distinct versions (W4).
/// - Every operation sees only `tenant`'s data (W9).
#[async_trait]
pub trait WorkflowStore: Send + Sync + std::fmt::Debug {
    /// Stores a version and returns what is stored.
    ///
    /// # Errors
    /// `PreconditionFailed` (W2, W3), `InvalidInput` (missing parent, version 0, size), backend
    /// errors.
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion>;

    /// Reads one version.
    ///
    /// # Errors
    /// `NotFound`; `CorruptData` when the stored version cannot be read back (W10).
    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion>;

    /// The highest version that is not deleted (W6).
    ///
    /// # Errors
    /// `NotFound` when the workflow has no version.
    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion>;

    /// All versions, ascending (W7). Empty when the workflow does not exist.
    ///
    /// # Errors
    /// Backend errors.
    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>>;

    /// The chain from `version` back to its root, starting with `version` itself (W5).
    ///
    /// # Errors
    /// `NotFound` when `version` does not exist.
    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>>;

    /// The latest version of each workflow, sorted by id, one page at a time (W7).
    ///
    /// # Errors
    /// `InvalidInput` for a foreign cursor; backend errors.
    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>>;

    /// Deletes one version (W8).
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()>;
}

impl crate::operation::Operation {
    /// [`WorkflowStore::put`]: with an explicit version a repeat is the same put (W2); without, it would store the next version.
    pub const WORKFLOWS_PUT: Self = Self::new(
        "workflows.put",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::WhenKeyed,
    );
    /// [`WorkflowStore::get`].
    pub const WORKFLOWS_GET: Self = Self::new(
        "workflows.get",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Safe,
    );
    /// [`WorkflowStore::latest`].
    pub const WORKFLOWS_LATEST: Self = Self::new(
        "workflows.latest",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Safe,
    );
    /// [`WorkflowStore::versions`].
    pub const WORKFLOWS_VERSIONS: Self = Self::new(
        "workflows.versions",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Safe,
    );
    /// [`WorkflowStore::lineage`].
    pub const WORKFLOWS_LINEAGE: Self = Self::new(
        "workflows.lineage",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Safe,
    );
    /// [`WorkflowStore::list`].
    pub const WORKFLOWS_LIST: Self = Self::new(
        "workflows.list",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Safe,
    );
    /// [`WorkflowStore::delete`]: a repeat after an unseen success answers `NotFound`.
    pub const WORKFLOWS_DELETE: Self = Self::new(
        "workflows.delete",
        crate::operation::Port::Workflows,
        crate::operation::Repeat::Never,
    );
}
