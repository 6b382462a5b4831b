//! Documents as files (D1, D2): `<root>/<tenant>/documents/<collection>/<id>.json`, one
//! JSON file per document holding its revision, write time and body. Writes are atomic
//! (temp, fsync, rename) and conditional writes hold the collection's lock, so a
//! revision check and its write cannot interleave with another process's.

use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::adapter_kit::cursors::DOCUMENTS as DOCUMENT_CURSOR;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::{
    CollectionName, Document, DocumentFilter, DocumentId, DocumentStore, Error, ErrorKind, Page,
    PageRequest, Result, TenantId, Timestamp,
};

use crate::files::{create_private_dir, io_error, lock_exclusive, remove_durable, write_atomic};
use crate::FsStore;

impl FsStore {
    pub(crate) fn documents_dir(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str()).join("documents")
    }

    fn collection_dir(&self, tenant: &TenantId, c: &CollectionName) -> PathBuf {
        self.documents_dir(tenant).join(c.as_str())
    }

    fn read_document(dir: &Path, c: &CollectionName, id: &DocumentId) -> Result<Document> {
        let path = dir.join(format!("{id}.json"));
        let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => kit::document_missing(c, id),
            _ => io_error("reading", &path, &e),
        })?;
        let doc: Document = serde_json::from_str(&text).map_err(|e| {
            Error::corrupt(format!("{} is damaged: {e}", path.display()))
                .with_context("path", path.display())
        })?;
        if doc.id != *id {
            return Err(Error::corrupt(format!(
                "{} holds document {}",
                path.display(),
                doc.id
            )));
        }
        Ok(doc)
    }

    fn write_document(dir: &Path, doc: &Document) -> Result<()> {
        let text = serde_json::to_vec_pretty(doc)
            .map_err(|e| Error::invalid_input(format!("document: {e}")))?;
        write_atomic(&dir.join(format!("{}.json", doc.id)), &text)
    }

    /// Document ids in a collection, sorted.
    pub(crate) fn document_ids(dir: &Path) -> Result<Vec<DocumentId>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", dir, &e)),
        };
        let mut ids: Vec<DocumentId> = entries
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_suffix(".json")
                    .and_then(|s| DocumentId::new(s).ok())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Runs `f` on the collection directory under its lock.
    fn locked<T>(
        &self,
        tenant: &TenantId,
        c: &CollectionName,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let dir = self.collection_dir(tenant, c);
        create_private_dir(&dir)?;
        let _lock = lock_exclusive(&dir.join(".lock"))?;
        f(&dir)
    }
}

#[async_trait]
impl DocumentStore for FsStore {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.limit.check("document", &body)?;
        let (t, c) = (tenant.clone(), collection.clone());
        self.blocking(move |s| {
            s.locked(&t, &c, |dir| {
                let doc = Document {
                    id: id.unwrap_or_else(DocumentId::generate),
                    revision: 1,
                    body,
                    updated_at: Timestamp::now(),
                };
                if dir.join(format!("{}.json", doc.id)).exists() {
                    return Err(kit::document_taken(&c, &doc.id));
                }
                Self::write_document(dir, &doc)?;
                Ok(doc)
            })
        })
        .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        let (t, c, id) = (tenant.clone(), collection.clone(), id.clone());
        self.blocking(move |s| Self::read_document(&s.collection_dir(&t, &c), &c, &id))
            .await
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document> {
        self.limit.check("document", &body)?;
        let (t, c, id) = (tenant.clone(), collection.clone(), id.clone());
        self.blocking(move |s| {
            s.locked(&t, &c, |dir| {
                let current = Self::read_document(dir, &c, &id)?;
                if current.revision != expected_revision {
                    return Err(kit::stale_revision(
                        &id,
                        expected_revision,
                        current.revision,
                    ));
                }
                // A revision read from a file may have been edited to anything.
                let revision = current.revision.checked_add(1).ok_or_else(|| {
                    Error::corrupt(format!(
                        "document {id} is at revision {}, which cannot be raised",
                        current.revision
                    ))
                })?;
                let doc = Document {
                    id: id.clone(),
                    revision,
                    body,
                    updated_at: Timestamp::now(),
                };
                Self::write_document(dir, &doc)?;
                Ok(doc)
            })
        })
        .await
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        let (t, c, id) = (tenant.clone(), collection.clone(), id.clone());
        self.blocking(move |s| {
            if !s.collection_dir(&t, &c).exists() {
                return Err(kit::document_missing(&c, &id));
            }
            s.locked(&t, &c, |dir| {
                let current = Self::read_document(dir, &c, &id)?;
                if let Some(expected) = expected_revision.filter(|e| *e != current.revision) {
                    return Err(kit::stale_revision(&id, expected, current.revision));
                }
                remove_durable(&dir.join(format!("{id}.json")))
            })
        })
        .await
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
        let (t, c, filter) = (tenant.clone(), collection.clone(), filter.clone());
        self.blocking(move |s| {
            let dir = s.collection_dir(&t, &c);
            let mut candidates = Vec::new();
            for id in Self::document_ids(&dir)?
                .into_iter()
                .filter(|id| after.as_ref().is_none_or(|a| id > a))
            {
                match Self::read_document(&dir, &c, &id) {
                    Ok(d) if filter.matches(&d.body) => candidates.push(d),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::CorruptData => {
                        tracing::warn!(error = %e, "skipping a damaged document file")
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                if candidates.len() > limit {
                    break;
                }
            }
            Ok(Page::from_candidates(
                DOCUMENT_CURSOR,
                candidates,
                limit,
                |d| d.id.clone(),
            ))
        })
        .await
    }

    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        let t = tenant.clone();
        self.blocking(move |s| {
            let dir = s.documents_dir(&t);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error("listing", &dir, &e)),
            };
            let mut out = Vec::new();
            for name in entries
                .filter_map(std::result::Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
            {
                if let Ok(c) = CollectionName::new(name) {
                    if !Self::document_ids(&dir.join(c.as_str()))?.is_empty() {
                        out.push(c);
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }
}
