//! Documents in memory (D1, D2).

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::adapter_kit::cursors::DOCUMENTS as DOCUMENT_CURSOR;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    CollectionName, Document, DocumentFilter, DocumentId, DocumentStore, Page, PageRequest, Result,
    TenantId, Timestamp,
};

use crate::state::State;
use crate::MemoryStore;

/// The document writes under an already held lock (shared with units of work).
impl MemoryStore {
    pub(crate) fn create_locked(
        state: &mut State,
        tenant: &TenantId,
        collection: &CollectionName,
        doc: Document,
    ) -> Result<Document> {
        let coll = state
            .tenant(tenant)
            .documents
            .entry(collection.clone())
            .or_default();
        if coll.contains_key(&doc.id) {
            return Err(kit::document_taken(collection, &doc.id));
        }
        coll.insert(doc.id.clone(), doc.clone());
        Ok(doc)
    }

    pub(crate) fn get_locked(
        state: &mut State,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        state
            .tenant(tenant)
            .documents
            .get(collection)
            .and_then(|c| c.get(id))
            .cloned()
            .ok_or_else(|| kit::document_missing(collection, id))
    }

    pub(crate) fn replace_locked(
        state: &mut State,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
        now: Timestamp,
    ) -> Result<Document> {
        let doc = state
            .tenant(tenant)
            .documents
            .get_mut(collection)
            .and_then(|c| c.get_mut(id))
            .ok_or_else(|| kit::document_missing(collection, id))?;
        if doc.revision != expected_revision {
            return Err(kit::stale_revision(id, expected_revision, doc.revision));
        }
        doc.revision += 1;
        doc.body = body;
        doc.updated_at = now;
        Ok(doc.clone())
    }

    pub(crate) fn delete_locked(
        state: &mut State,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        let docs = &mut state.tenant(tenant).documents;
        let coll = docs
            .get_mut(collection)
            .ok_or_else(|| kit::document_missing(collection, id))?;
        let doc = coll
            .get(id)
            .ok_or_else(|| kit::document_missing(collection, id))?;
        if let Some(expected) = expected_revision.filter(|e| *e != doc.revision) {
            return Err(kit::stale_revision(id, expected, doc.revision));
        }
        coll.remove(id);
        if coll.is_empty() {
            docs.remove(collection);
        }
        Ok(())
    }

    /// A new document as `create` stores it.
    pub(crate) fn new_document(&self, id: Option<DocumentId>, body: Value) -> Result<Document> {
        self.limit().check("document", &body)?;
        Ok(Document {
            id: id.unwrap_or_else(DocumentId::generate),
            revision: 1,
            body,
            updated_at: self.now(),
        })
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        let doc = self.new_document(id, body)?;
        Self::create_locked(&mut self.lock(), tenant, collection, doc)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        Self::get_locked(&mut self.lock(), tenant, collection, id)
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document> {
        self.limit().check("document", &body)?;
        let now = self.now();
        Self::replace_locked(
            &mut self.lock(),
            tenant,
            collection,
            id,
            expected_revision,
            body,
            now,
        )
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        Self::delete_locked(&mut self.lock(), tenant, collection, id, expected_revision)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>> {
        let after: Option<DocumentId> = page
            .cursor
            .as_ref()
            .map(|c| c.decode(DOCUMENT_CURSOR))
            .transpose()?;
        let limit = page.effective_limit();
        let mut state = self.lock();
        let candidates: Vec<Document> = state
            .tenant(tenant)
            .documents
            .get(collection)
            .map(|c| {
                c.values()
                    .filter(|d| after.as_ref().is_none_or(|a| d.id > *a) && filter.matches(&d.body))
                    .take(limit + 1)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page::from_candidates(
            DOCUMENT_CURSOR,
            candidates,
            limit,
            |d| d.id.clone(),
        ))
    }

    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        Ok(self
            .lock()
            .tenant(tenant)
            .documents
            .keys()
            .cloned()
            .collect())
    }
}
