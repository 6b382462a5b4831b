//! Documents in Redis (D1, D2): a hash per document (`rev`, `body`, `at`) and a lex
//! index per collection for keyset-paged listings. Create, replace and delete are
//! scripts that check the revision in the same step as they write (compare-and-set).

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use serde_json::Value;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::filtered_listing::{list_filtered, Chunk};
use storage_ports::{
    CollectionName, Document, DocumentFilter, DocumentId, DocumentStore, Error, Page, PageRequest,
    Result, TenantId, Timestamp,
};

use crate::error::{decode, encode, RedisResultExt};
use crate::RedisStore;
use storage_ports::adapter_kit::stored_id;

/// Index entries read per round trip while a listing filters.
const CHUNK: usize = 200;

/// KEYS: document, collection index, collections. ARGV: id, body, at, collection.
/// Returns 1, or 0 when the id exists.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rev', 1, 'body', ARGV[2], 'at', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[4])
return 1
",
    )
});

/// KEYS: document. ARGV: expected revision, body, at. Returns the new revision, -1
/// (missing) or the stored revision negated minus 2 (stale).
static REPLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return -1 end
if rev ~= ARGV[1] then return -2 - tonumber(rev) end
redis.call('HSET', KEYS[1], 'rev', tonumber(rev) + 1, 'body', ARGV[2], 'at', ARGV[3])
return tonumber(rev) + 1
",
    )
});

/// KEYS: document, collection index, collections. ARGV: expected revision (empty:
/// any), id, collection. Returns 1, -1 (missing) or -2 - stored revision (stale).
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return -1 end
if ARGV[1] ~= '' and rev ~= ARGV[1] then return -2 - tonumber(rev) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('ZREM', KEYS[3], ARGV[3]) end
return 1
",
    )
});

fn document_of(id: DocumentId, fields: &[Option<String>]) -> Result<Option<Document>> {
    let [Some(rev), Some(body), Some(at)] = fields else {
        return Ok(None);
    };
    Ok(Some(Document {
        id,
        revision: rev
            .parse()
            .map_err(|_| Error::corrupt(format!("stored revision {rev:?} is not a number")))?,
        body: decode(body, "document")?,
        updated_at: Timestamp::from_micros(
            at.parse()
                .map_err(|_| Error::corrupt(format!("stored time {at:?} is not a number")))?,
        ),
    }))
}

/// Turns a script's code into the caller's error.
fn refused(code: i64, collection: &CollectionName, id: &DocumentId, expected: u64) -> Error {
    if code == -1 {
        kit::document_missing(collection, id)
    } else {
        kit::stale_revision(id, expected, u64::try_from(-2 - code).unwrap_or(0))
    }
}

#[async_trait]
impl DocumentStore for RedisStore {
    async fn create(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        self.limit.check("document", &body)?;
        let doc = Document {
            id: id.unwrap_or_else(DocumentId::generate),
            revision: 1,
            body,
            updated_at: Timestamp::now(),
        };
        let keys = self.keys(tenant);
        let done: i64 = CREATE
            .key(keys.document(collection, doc.id.as_str()))
            .key(keys.collection(collection))
            .key(keys.collections())
            .arg(doc.id.as_str())
            .arg(encode(&doc.body, "document")?)
            .arg(doc.updated_at.as_micros())
            .arg(collection.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("documents.create")?;
        if done == 0 {
            return Err(kit::document_taken(collection, &doc.id));
        }
        Ok(doc)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys(tenant).document(collection, id.as_str()))
            .arg(&["rev", "body", "at"])
            .query_async(&mut self.conn())
            .await
            .op("documents.get")?;
        document_of(id.clone(), &fields)?.ok_or_else(|| kit::document_missing(collection, id))
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
        let now = Timestamp::now();
        let code: i64 = REPLACE
            .key(self.keys(tenant).document(collection, id.as_str()))
            .arg(expected_revision)
            .arg(encode(&body, "document")?)
            .arg(now.as_micros())
            .invoke_async(&mut self.conn())
            .await
            .op("documents.replace")?;
        if code < 0 {
            return Err(refused(code, collection, id, expected_revision));
        }
        Ok(Document {
            id: id.clone(),
            revision: u64::try_from(code).unwrap_or(0),
            body,
            updated_at: now,
        })
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        let keys = self.keys(tenant);
        let code: i64 = DELETE
            .key(keys.document(collection, id.as_str()))
            .key(keys.collection(collection))
            .key(keys.collections())
            .arg(expected_revision.map_or_else(String::new, |r| r.to_string()))
            .arg(id.as_str())
            .arg(collection.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("documents.delete")?;
        if code < 0 {
            return Err(refused(
                code,
                collection,
                id,
                expected_revision.unwrap_or(0),
            ));
        }
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        collection: &CollectionName,
        filter: &DocumentFilter,
        page: PageRequest,
    ) -> Result<Page<Document>> {
        let keys = self.keys(tenant);
        let keys = &keys;
        list_filtered(filter, &page, |after| async move {
            let start = after
                .as_ref()
                .map_or_else(|| "-".to_owned(), |a| format!("({a}"));
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg(keys.collection(collection))
                .arg(start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(CHUNK)
                .query_async(&mut self.conn())
                .await
                .op("documents.list")?;
            let ids: Vec<DocumentId> = ids
                .into_iter()
                .map(|i| stored_id(i, "document id"))
                .collect::<Result<_>>()?;
            let next_after = (ids.len() == CHUNK).then(|| ids.last().cloned()).flatten();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(keys.document(collection, id.as_str()))
                    .arg(&["rev", "body", "at"]);
            }
            let rows: Vec<Vec<Option<String>>> = if ids.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut self.conn())
                    .await
                    .op("documents.list")?
            };
            let mut documents = Vec::with_capacity(ids.len());
            for (id, fields) in ids.into_iter().zip(rows) {
                // Deleted between the index read and this one: skipped. Damaged: logged
                // and skipped, so one document never breaks the listing (W10).
                match document_of(id.clone(), &fields) {
                    Ok(d) => documents.extend(d),
                    Err(e) if e.kind() == storage_ports::ErrorKind::CorruptData => {
                        tracing::warn!(%tenant, %collection, document = %id, error = %e, "a damaged document is skipped");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Chunk {
                documents,
                next_after,
            })
        })
        .await
    }

    async fn collections(&self, tenant: &TenantId) -> Result<Vec<CollectionName>> {
        let names: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys(tenant).collections())
            .arg("-")
            .arg("+")
            .arg("BYLEX")
            .query_async(&mut self.conn())
            .await
            .op("documents.collections")?;
        names
            .into_iter()
            .map(|n| stored_id(n, "collection name"))
            .collect()
    }
}
