//! `Collection<T>`: the document store for one Rust type.
//!
//! A host keeps its own entities (executions, plans) as documents; this handle writes
//! a `T` as the body and reads it back as a `T`, so the host's code never touches
//! `serde_json::Value`. A stored body that no longer decodes as `T` (the type changed,
//! someone edited the row) is `CorruptData` naming the collection and the id, never a
//! panic; a listing skips such documents and reports them beside the page.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::document::{Document, DocumentFilter, DocumentStore};
use crate::error::{Error, Result};
use crate::ids::{CollectionName, DocumentId, TenantId};
use crate::rules::cursor::{Cursor, PageRequest};
use crate::time::Timestamp;

/// One document read as a `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed<T> {
    /// Id, unique in its collection.
    pub id: DocumentId,
    /// Revision, for the next [`Collection::replace`] or [`Collection::delete`].
    pub revision: u64,
    /// The body.
    pub value: T,
    /// Last write time.
    pub updated_at: Timestamp,
}

/// A page of a typed listing: the documents that decode, and the ones that do not.
#[derive(Debug)]
pub struct TypedPage<T> {
    /// The documents that decode as `T`, in the listing's order.
    pub items: Vec<Typed<T>>,
    /// One `CorruptData` error per document on this page that does not decode.
    pub undecodable: Vec<Error>,
    /// Present when more documents may follow.
    pub next: Option<Cursor>,
}

/// The documents of one collection of one tenant, as values of `T`.
pub struct Collection<T> {
    store: Arc<dyn DocumentStore>,
    tenant: TenantId,
    name: CollectionName,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Collection<T> {
    /// The collection `name` of `tenant` in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn DocumentStore>, tenant: TenantId, name: CollectionName) -> Self {
        Self {
            store,
            tenant,
            name,
            _type: PhantomData,
        }
    }

    fn body(value: &T) -> Result<serde_json::Value> {
        serde_json::to_value(value).map_err(|e| {
            Error::invalid_input(format!(
                "a {} cannot be stored as JSON: {e}",
                std::any::type_name::<T>()
            ))
        })
    }

    fn typed(&self, doc: Document) -> Result<Typed<T>> {
        let value = serde_json::from_value(doc.body).map_err(|e| {
            Error::corrupt(format!(
                "document {} in {} does not decode as {}: {e}",
                doc.id,
                self.name,
                std::any::type_name::<T>()
            ))
            .with_context("document", doc.id.as_str())
        })?;
        Ok(Typed {
            id: doc.id,
            revision: doc.revision,
            value,
            updated_at: doc.updated_at,
        })
    }

    /// Stores `value` as a new document, under `id` or a generated one.
    ///
    /// # Errors
    /// `InvalidInput` when `value` does not serialize or breaks a limit,
    /// `AlreadyExists` for a taken id, and the store's errors.
    pub async fn create(&self, id: Option<DocumentId>, value: &T) -> Result<Typed<T>> {
        let doc = self
            .store
            .create(&self.tenant, &self.name, id, Self::body(value)?)
            .await?;
        self.typed(doc)
    }

    /// Reads one document.
    ///
    /// # Errors
    /// `NotFound`, `CorruptData` when the stored body does not decode as `T`, and the
    /// store's errors.
    pub async fn get(&self, id: &DocumentId) -> Result<Typed<T>> {
        let doc = self.store.get(&self.tenant, &self.name, id).await?;
        self.typed(doc)
    }

    /// Replaces a document whose revision is still `expected_revision`.
    ///
    /// # Errors
    /// `PreconditionFailed` for a stale revision, `NotFound`, `InvalidInput`, and the
    /// store's errors.
    pub async fn replace(
        &self,
        id: &DocumentId,
        expected_revision: u64,
        value: &T,
    ) -> Result<Typed<T>> {
        let doc = self
            .store
            .replace(
                &self.tenant,
                &self.name,
                id,
                expected_revision,
                Self::body(value)?,
            )
            .await?;
        self.typed(doc)
    }

    /// Deletes a document (at `expected_revision` when given).
    ///
    /// # Errors
    /// `NotFound`, `PreconditionFailed`, and the store's errors.
    pub async fn delete(&self, id: &DocumentId, expected_revision: Option<u64>) -> Result<()> {
        self.store
            .delete(&self.tenant, &self.name, id, expected_revision)
            .await
    }

    /// One page of the documents matching `filter`, in byte order of ids; a document
    /// that does not decode is in `undecodable`, not in `items`.
    ///
    /// # Errors
    /// `InvalidInput` for a foreign cursor, and the store's errors.
    pub async fn list(&self, filter: &DocumentFilter, page: PageRequest) -> Result<TypedPage<T>> {
        let page = self
            .store
            .list(&self.tenant, &self.name, filter, page)
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        let mut undecodable = Vec::new();
        for doc in page.items {
            match self.typed(doc) {
                Ok(t) => items.push(t),
                Err(e) => undecodable.push(e),
            }
        }
        Ok(TypedPage {
            items,
            undecodable,
            next: page.next,
        })
    }
}
