//! Documents in PostgreSQL (D1, D2). Replace and delete are conditional on the
//! revision in the statement itself (compare-and-set). Filters are pre-selected by
//! JSONB containment, which a GIN index serves, then checked exactly here, so that
//! every backend compares JSON values the same way.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::filtered_listing::{list_filtered, Chunk};
use storage_ports::{
    CollectionName, Document, DocumentFilter, DocumentId, DocumentStore, Error, Page, PageRequest,
    Result, TenantId, Timestamp,
};

use crate::error::SqlxResultExt;
use crate::runs::json_text;
use crate::time::{from_pg, to_pg};
use crate::PostgresStore;
use storage_ports::adapter_kit::{stored_id, to_i64};

/// Rows read per round trip while filtering a listing.
const CHUNK: i64 = 500;

fn document(row: &PgRow) -> Result<Document> {
    let revision: i64 = row.try_get("revision").op("documents.decode")?;
    let Json(body) = row.try_get("body").op("documents.decode")?;
    Ok(Document {
        id: stored_id(row.try_get("id").op("documents.decode")?, "document id")?,
        revision: u64::try_from(revision)
            .map_err(|_| Error::corrupt(format!("stored revision {revision} is negative")))?,
        body,
        updated_at: from_pg(row.try_get("updated_at").op("documents.decode")?),
    })
}

/// Why a conditional write touched no row: missing, or at another revision.
async fn explain(
    conn: &mut PgConnection,
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

/// A new document as `create` stores it.
pub(crate) fn new_document(id: Option<DocumentId>, body: Value) -> Document {
    Document {
        id: id.unwrap_or_else(DocumentId::generate),
        revision: 1,
        body,
        updated_at: Timestamp::now(),
    }
}

/// The document operations on one connection: the store's own calls run them on a
/// pooled connection, a unit of work (T2) in its transaction. None of them lets a
/// statement fail for an answer (a taken id, a stale revision), so an answer never
/// aborts the unit's transaction.
pub(crate) async fn create_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    doc: Document,
) -> Result<Document> {
    let done = sqlx::query("INSERT INTO flowstore_documents (tenant, collection, id, revision, body, updated_at) VALUES ($1, $2, $3, 1, $4::jsonb, $5) ON CONFLICT DO NOTHING")
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(doc.id.as_str())
        .bind(json_text(&doc.body, "document")?)
        .bind(to_pg(doc.updated_at)?)
        .execute(&mut *conn)
        .await
        .op("documents.create")?;
    if done.rows_affected() == 0 {
        return Err(kit::document_taken(collection, &doc.id));
    }
    Ok(doc)
}

/// See [`create_in`].
pub(crate) async fn get_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
) -> Result<Document> {
    sqlx::query("SELECT id, revision, body, updated_at FROM flowstore_documents WHERE tenant = $1 AND collection = $2 AND id = $3")
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
    conn: &mut PgConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
    expected_revision: u64,
    body: Value,
) -> Result<Document> {
    let now = Timestamp::now();
    let done = sqlx::query("UPDATE flowstore_documents SET revision = revision + 1, body = $1::jsonb, updated_at = $2 WHERE tenant = $3 AND collection = $4 AND id = $5 AND revision = $6")
        .bind(json_text(&body, "document")?)
        .bind(to_pg(now)?)
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
    conn: &mut PgConnection,
    tenant: &TenantId,
    collection: &CollectionName,
    id: &DocumentId,
    expected_revision: Option<u64>,
) -> Result<()> {
    let done = sqlx::query("DELETE FROM flowstore_documents WHERE tenant = $1 AND collection = $2 AND id = $3 AND ($4::int8 IS NULL OR revision = $4)")
        .bind(tenant.as_str())
        .bind(collection.as_str())
        .bind(id.as_str())
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

impl PostgresStore {
    async fn conn(&self, op: &'static str) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.op(op)
    }
}

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.limit.check("document", &body)?;
        let doc = new_document(id, body);
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
        replace_in(&mut conn, tenant, collection, id, expected_revision, body).await
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
        // Containment is looser than equality (arrays, nested objects, 1 vs 1.0), so
        // it only narrows the rows; `filter.matches` decides.
        let contains: Value = filter
            .equals
            .iter()
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let Ok(contains) = json_text(&contains, "filter") else {
            // A filter PostgreSQL cannot hold (NUL) matches nothing it stores.
            return list_filtered(filter, &page, |_| async {
                Ok(Chunk {
                    documents: Vec::new(),
                    next_after: None,
                })
            })
            .await;
        };
        let contains = &contains;
        list_filtered(filter, &page, |after| async move {
            let rows = sqlx::query("SELECT id, revision, body, updated_at FROM flowstore_documents WHERE tenant = $1 AND collection = $2 AND id > $3 AND body @> $4::jsonb ORDER BY id LIMIT $5")
                .bind(tenant.as_str())
                .bind(collection.as_str())
                .bind(after.as_ref().map_or("", DocumentId::as_str).to_owned())
                .bind(contains)
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
        let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT collection FROM flowstore_documents WHERE tenant = $1 ORDER BY collection")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .op("documents.collections")?;
        names
            .into_iter()
            .map(|n| stored_id(n, "collection name"))
            .collect()
    }
}
