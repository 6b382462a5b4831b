//! A filtered document listing (D2) for backends that read documents in id order and
//! check the filter in flowstore: JSON equality is then the same on every backend
//! (1 and 1.0, nested values, key order), whatever the database would have said.

use std::future::Future;

use crate::adapter_kit::cursors::DOCUMENTS as DOCUMENT_CURSOR;
use crate::document::{Document, DocumentFilter};
use crate::error::Result;
use crate::ids::DocumentId;
use crate::rules::cursor::{Page, PageRequest};

/// One read of a listing: documents in id order, and where the next read starts
/// (`None` when the collection is exhausted).
#[derive(Debug)]
pub struct Chunk {
    /// Documents, ascending by id; may skip ids that vanished meanwhile.
    pub documents: Vec<Document>,
    /// The id after which to read next, or `None` at the end.
    pub next_after: Option<DocumentId>,
}

/// Reads chunks with `fetch(after)` until the page is full or the collection ends,
/// keeping the documents `filter` matches.
///
/// # Errors
/// `InvalidInput` for a foreign cursor; `fetch`'s errors.
pub async fn list_filtered<F, Fut>(
    filter: &DocumentFilter,
    page: &PageRequest,
    mut fetch: F,
) -> Result<Page<Document>>
where
    F: FnMut(Option<DocumentId>) -> Fut,
    Fut: Future<Output = Result<Chunk>>,
{
    let mut after: Option<DocumentId> = page
        .cursor
        .as_ref()
        .map(|c| c.decode(DOCUMENT_CURSOR))
        .transpose()?;
    let limit = page.effective_limit();
    let mut candidates = Vec::new();
    loop {
        let chunk = fetch(after.take()).await?;
        for d in chunk.documents {
            if filter.matches(&d.body) {
                candidates.push(d);
                if candidates.len() > limit {
                    break;
                }
            }
        }
        match chunk.next_after {
            Some(next) if candidates.len() <= limit => after = Some(next),
            _ => break,
        }
    }
    Ok(Page::from_candidates(
        DOCUMENT_CURSOR,
        candidates,
        limit,
        |d| d.id.clone(),
    ))
}
