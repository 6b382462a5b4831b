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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use serde_json::json;

    use super::*;
    use crate::Timestamp;

    /// Documents `d00`..`d{n-1}` whose body says whether the index is even, read two at
    /// a time as a backend in id order would.
    fn read(n: usize, after: Option<DocumentId>) -> Chunk {
        let all: Vec<Document> = (0..n)
            .map(|i| Document {
                id: DocumentId::new(format!("d{i:02}")).unwrap_or_else(|e| panic!("{e}")),
                revision: 1,
                body: json!({"even": i % 2 == 0, "n": i}),
                updated_at: Timestamp::from_micros(0),
            })
            .filter(|d| after.as_ref().is_none_or(|a| d.id > *a))
            .collect();
        let documents: Vec<Document> = all.iter().take(2).cloned().collect();
        let next_after = (all.len() > 2).then(|| documents[1].id.clone());
        Chunk {
            documents,
            next_after,
        }
    }

    fn list(n: usize, filter: &DocumentFilter, page: &PageRequest) -> Page<Document> {
        list_filtered(filter, page, |after| async move { Ok(read(n, after)) })
            .now_or_never()
            .unwrap_or_else(|| panic!("the reads are ready at once"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn pages_hold_only_matches_and_resume_after_the_last() {
        let even = DocumentFilter::all().eq("even", json!(true));
        let mut seen = Vec::new();
        let mut page = PageRequest::first(2);
        loop {
            let p = list(9, &even, &page);
            assert!(p.items.len() <= 2);
            seen.extend(p.items.iter().map(|d| d.body["n"].as_u64().unwrap_or(99)));
            match p.next {
                Some(c) => page = PageRequest::after(2, c),
                None => break,
            }
        }
        assert_eq!(seen, vec![0, 2, 4, 6, 8], "every match once, in id order");
        assert!(list(
            9,
            &DocumentFilter::all().eq("n", json!(100)),
            &PageRequest::first(5)
        )
        .items
        .is_empty());
        assert_eq!(
            list(0, &DocumentFilter::all(), &PageRequest::first(5))
                .items
                .len(),
            0
        );
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let page = PageRequest::after(2, crate::Cursor::encode("runs", &1));
        let r = list_filtered(&DocumentFilter::all(), &page, |after| async move {
            Ok(read(3, after))
        })
        .now_or_never();
        assert!(matches!(r, Some(Err(e)) if e.kind() == crate::ErrorKind::InvalidInput));
    }
}
