//! The document port (spec D1, D2): a generic repository for a host's own entities.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::ids::{CollectionName, DocumentId, TenantId};
use crate::rules::cursor::{Page, PageRequest};
use crate::time::Timestamp;

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Id, unique in its collection.
    pub id: DocumentId,
    /// Revision: 1 when created, +1 per replace. Replaces name the revision they expect.
    pub revision: u64,
    /// Body.
    pub body: Value,
    /// Last write time.
    pub updated_at: Timestamp,
}

/// Equality filters on top-level fields of the body; all must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocumentFilter {
    /// `(field, value)` pairs.
    pub equals: Vec<(String, Value)>,
}

impl DocumentFilter {
    /// No filter.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds `field == value`.
    #[must_use]
    pub fn eq(mut self, field: impl Into<String>, value: Value) -> Self {
        self.equals.push((field.into(), value));
        self
    }

    /// Whether `body` matches.
    #[must_use]
    pub fn matches(&self, body: &Value) -> bool {
        self.equals.iter().all(|(f, v)| body.get(f) == Some(v))
    }
}

/// Named collections of JSON documents with optimistic concurrency.
///
/// # Behavior
/// - `replace` or `delete` with a stale revision is `PreconditionFailed` (D1).
/// - Listings are in byte order of ids, with keyset cursors (D1).
/// - Every operation sees only `tenant`'s documents (D2).
#[async_trait]
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    /// Creates a document with `id` or a generated one.
    ///
    /// # Errors
    /// `AlreadyExists` when `id` exists; `InvalidInput` (size).
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document>;

    /// Reads a document.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document>;

    /// Replaces a document if its revision is `expected_revision`.
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed` for a stale revision.
    async fn replace(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document>;

    /// Deletes a document; with `expected_revision`, only at that revision.
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed` for a stale revision.
    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()>;

    /// Lists matching documents by id.
    ///
    /// # Errors
    /// `InvalidInput` for a foreign cursor.
    async fn list(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>>;

    /// The tenant's non-empty collections, sorted.
    ///
    /// # Errors
    /// Backend errors.
    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>>;
}

impl crate::operation::Operation {
    /// [`DocumentStore::create`]: a repeat after an unseen success answers `AlreadyExists`.
    pub const DOCUMENTS_CREATE: Self = Self::new(
        "documents.create",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Never,
    );
    /// [`DocumentStore::get`].
    pub const DOCUMENTS_GET: Self = Self::new(
        "documents.get",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Safe,
    );
    /// [`DocumentStore::replace`]: a repeat after an unseen success answers `PreconditionFailed`.
    pub const DOCUMENTS_REPLACE: Self = Self::new(
        "documents.replace",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Never,
    );
    /// [`DocumentStore::delete`]: a repeat after an unseen success answers `NotFound`.
    pub const DOCUMENTS_DELETE: Self = Self::new(
        "documents.delete",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Never,
    );
    /// [`DocumentStore::list`].
    pub const DOCUMENTS_LIST: Self = Self::new(
        "documents.list",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Safe,
    );
    /// [`DocumentStore::collections`].
    pub const DOCUMENTS_COLLECTIONS: Self = Self::new(
        "documents.collections",
        crate::operation::Port::Documents,
        crate::operation::Repeat::Safe,
    );
}
