//! Documents in SQLite (D1, D2).

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::filtered_listing::{list_filtered, Chunk};
use storage_ports::{
    CollectionName, Document, DocumentFilter, DocumentId, DocumentStore, Error, Page, PageRequest,
    Result, TenantId, Timestamp,
};

use crate::error::{json_column, SqlxResultExt};
use crate::SqliteStore;

fn document(row: &SqliteRow) -> Result<Document> {
    let id: String = row.try_get("id").op("documents.decode")?;
    let revision: i64 = row.try_get("revision").op("documents.decode")?;
    Ok(Document {
        id: DocumentId::new(id).map_err(|e| Error::corrupt(format!("stored document id: {e}")))?,
        revision: u64::try_from(revision)
            .map_err(|_| Error::corrupt(format!("stored revision {revision} is negative")))?,
        body: json_column(
            &row.try_get::<String, _>("body").op("documents.decode")?,
            "document body",
        )?,
        updated_at: Timestamp::from_micros(row.try_get("updated_at").op("documents.decode")?),
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Why a conditional write touched no row: missing, or at another revision.
async fn explain(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    c: &CollectionName,
    id: &DocumentId,
    expected: u64,
) -> Error {
    match get_in(conn, tenant, c, id).await {
        Ok(d) => kit::stale_revision(id, expected, d.revision),
        Err(e) => e,
    }
}

/// The document operations on one connection: the store's own calls run them on a
/// pooled connection, a unit of work (T2) on its transaction.
pub(crate) async fn create_in(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    doc: Document,
) -> Result<Document> {
    let r = sqlx::query("INSERT INTO flowstore_documents (tenant, collection, id, revision, body, updated_at) VALUES (?, ?, ?, 1, ?, ?)")
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(doc.id.as_str())
        .bind(doc.body.to_string())
        .bind(doc.updated_at.as_micros())
        .execute(&mut *conn)
        .await
        .op("documents.create");
    match r {
        Ok(_) => Ok(doc),
        Err(e) if e.kind() == storage_ports::ErrorKind::AlreadyExists => {
            Err(kit::document_taken(collection, &doc.id))
        }
        Err(e) => Err(e),
    }
}

/// See [`create_in`].
pub(crate) async fn get_in(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
) -> Result<Document> {
    sqlx::query("SELECT id, revision, body, updated_at FROM flowstore_documents WHERE tenant = ? AND collection = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .op("documents.get")?
        .as_ref()
        .map(document)
        .transpose()?
        .ok_or_else(|| kit::document_missing(collection, id))
}

/// See [`create_in`].
pub(crate) async fn replace_in(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
    expected_revision: u64,
    body: Value,
    now: Timestamp,
) -> Result<Document> {
    let done = sqlx::query("UPDATE flowstore_documents SET revision = revision + 1, body = ?, updated_at = ? WHERE tenant = ? AND collection = ? AND id = ? AND revision = ?")
        .bind(body.to_string())
        .bind(now.as_micros())
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(id.as_str())
        .bind(to_i64(expected_revision))
        .execute(&mut *conn)
        .await
        .op("documents.replace")?;
    if done.rows_affected() == 0 {
        return Err(explain(conn, tenant, collection, id, expected_revision).await);
    }
    Ok(Document {
        id: id.clone(),
        revision: expected_revision + 1,
        body,
        updated_at: now,
    })
}

/// See [`create_in`].
pub(crate) async fn delete_in(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
    expected_revision: Option<u64>,
) -> Result<()> {
    let done = sqlx::query("DELETE FROM flowstore_documents WHERE tenant = ? AND collection = ? AND id = ? AND (? IS NULL OR revision = ?)")
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(id.as_str())
        .bind(expected_revision.map(to_i64))
        .bind(expected_revision.map(to_i64))
        .execute(&mut *conn)
        .await
        .op("documents.delete")?;
    if done.rows_affected() == 0 {
        return Err(match expected_revision {
            Some(rev) => explain(conn, tenant, collection, id, rev).await,
            None => kit::document_missing(collection, id),
        });
    }
    Ok(())
}

impl SqliteStore {
    /// A new document as `create` stores it.
    pub(crate) fn new_document(&self, id: Option<DocumentId>, body: Value) -> Result<Document> {
        self.limit.check("document", &body)?;
        Ok(Document {
            id: id.unwrap_or_else(DocumentId::generate),
            revision: 1,
            body,
            updated_at: self.now(),
        })
    }

    async fn conn(&self, op: &'static str) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pool.acquire().await.op(op)
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        let doc = self.new_document(id, body)?;
        create_in(
            &mut *self.conn("documents.create").await?,
            tenant,
            collection,
            doc,
        )
        .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        get_in(
            &mut *self.conn("documents.get").await?,
            tenant,
            collection,
            id,
        )
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
        let mut conn = self.conn("documents.replace").await?;
        replace_in(
            &mut conn,
            tenant,
            collection,
            id,
            expected_revision,
            body,
            self.now(),
        )
        .await
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        let mut conn = self.conn("documents.delete").await?;
        delete_in(&mut conn, tenant, collection, id, expected_revision).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>> {
        const CHUNK: i64 = 500;
        list_filtered(filter, &page, |after| async move {
            let rows = sqlx::query("SELECT id, revision, body, updated_at FROM flowstore_documents WHERE tenant = ? AND collection = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(tenant.as_str())
                .bind(collection.as_str())
                .bind(after.as_ref().map_or("", DocumentId::as_str).to_owned())
                .bind(CHUNK)
                .fetch_all(&self.pool)
                .await
                .op("documents.list")?;
            // One damaged document never breaks the listing (W10): it is logged and
            // skipped; the next chunk starts after the last row read, damaged or not.
            let (documents, damaged) = storage_ports::adapter_kit::readable(rows.iter().map(document))?;
            for e in damaged {
                tracing::warn!(%tenant, %collection, error = %e, "a damaged document is skipped");
            }
            let next_after = match rows.last() {
                Some(r) if rows.len() as i64 == CHUNK => {
                    let id: String = r.try_get("id").op("documents.decode")?;
                    Some(DocumentId::new(id).map_err(|e| {
                        Error::corrupt(format!("stored document id: {e}"))
                    })?)
                }
                _ => None,
            };
            Ok(Chunk {
                documents,
                next_after,
            })
        })
        .await
    }

    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT collection FROM flowstore_documents WHERE tenant = ? ORDER BY collection")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .op("documents.collections")?;
        names
            .into_iter()
            .map(|n| {
                CollectionName::new(n)
                    .map_err(|e| Error::corrupt(format!("stored collection name: {e}")))
            })
            .collect()
    }
}
