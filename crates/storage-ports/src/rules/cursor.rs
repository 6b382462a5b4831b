//! Opaque pagination cursors (spec E5, W7, D1).
//!
//! A cursor holds the sort key of the last item a page returned; the next page starts
//! strictly after it. Keyset paging (rather than offsets) is what makes a listing yield
//! each item exactly once while new items are being written. Cursors are hex of a
//! small JSON value with a kind tag, so a cursor from one listing is refused by another.

use std::fmt;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

/// A position in a listing, opaque to the caller.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    k: String,
    p: T,
}

impl Cursor {
    /// Encodes `position` for the listing called `kind`.
    #[must_use]
    pub fn encode<T: Serialize>(kind: &str, position: &T) -> Self {
        let env = Envelope {
            k: kind.to_owned(),
            p: position,
        };
        let json = serde_json::to_vec(&env).unwrap_or_default();
        Self(crate::rules::hex::encode(&json))
    }

    /// Decodes a cursor issued by [`Cursor::encode`] for the same `kind`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) when the cursor was not issued for
    /// this listing.
    pub fn decode<T: DeserializeOwned>(&self, kind: &str) -> Result<T> {
        let bad = || {
            Error::invalid_input(format!(
                "the cursor is not one this store issued for a {kind} listing"
            ))
        };
        let bytes = crate::rules::hex::decode(&self.0).ok_or_else(bad)?;
        let env: Envelope<T> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if env.k != kind {
            return Err(bad());
        }
        Ok(env.p)
    }

    /// Wraps a string a caller got from an earlier page.
    #[must_use]
    pub fn from_string(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The opaque text, to hand to a caller.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

/// Which slice of a listing to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1..=1000; 0 is treated as 1, larger as 1000).
    pub limit: usize,
    /// Start after this position; `None` for the first page.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// Largest page any listing returns.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of `limit` items.
    #[must_use]
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(limit: usize, cursor: Cursor) -> Self {
        Self {
            limit,
            cursor: Some(cursor),
        }
    }

    /// The limit clamped to `1..=MAX_LIMIT`.
    #[must_use]
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(100)
    }
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Present when more items may follow.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` sorted candidates: if there are more than
    /// `limit`, the extra one is dropped and `next` points after the last kept item.
    pub fn from_candidates<K: Serialize>(
        kind: &str,
        mut candidates: Vec<T>,
        limit: usize,
        key: impl Fn(&T) -> K,
    ) -> Self {
        if candidates.len() > limit {
            candidates.truncate(limit);
            let next = candidates
                .last()
                .map(|last| Cursor::encode(kind, &key(last)));
            Self {
                items: candidates,
                next,
            }
        } else {
            Self {
                items: candidates,
                next: None,
            }
        }
    }

    /// [`Page::from_candidates`] for a listing where some of the `read` rows (up to
    /// `limit + 1`) could not be decoded and were skipped (W10): more follow when more
    /// than `limit` rows were read, whatever decoded. The next page starts after the
    /// last item kept, or after `last_read` (the key of the last row read) when none
    /// decoded, so a page of damaged rows is passed over instead of ending the listing.
    pub fn from_readable<K: Serialize>(
        kind: &str,
        mut candidates: Vec<T>,
        read: usize,
        limit: usize,
        key: impl Fn(&T) -> K,
        last_read: Option<K>,
    ) -> Self {
        if read <= limit {
            return Self::from_candidates(kind, candidates, limit, key);
        }
        candidates.truncate(limit);
        let next = match candidates.last() {
            Some(last) => Some(Cursor::encode(kind, &key(last))),
            None => last_read.map(|k| Cursor::encode(kind, &k)),
        };
        Self {
            items: candidates,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_row_neither_ends_the_listing_nor_repeats_an_item() {
        // Rows 1, 2 (damaged), 3 read for a page of 2: both readable ones are given and
        // the listing goes on after 3.
        let page = Page::from_readable("n", vec![1_u32, 3], 3, 2, |n| *n, Some(3));
        assert_eq!(page.items, [1, 3]);
        let next = page.next.map(|c| c.decode::<u32>("n").ok());
        assert_eq!(next, Some(Some(3)));
        // Every row damaged: the next page starts after the last row read.
        let page = Page::from_readable("n", Vec::<u32>::new(), 3, 2, |n| *n, Some(9));
        assert_eq!(page.next.map(|c| c.decode::<u32>("n").ok()), Some(Some(9)));
        // Fewer rows than the page: the end.
        let page = Page::from_readable("n", vec![1_u32], 2, 2, |n| *n, Some(2));
        assert!(page.next.is_none());
    }

    #[test]
    fn cursor_round_trips_and_refuses_other_kinds() {
        let c = Cursor::encode("runs", &(17_i64, "r1"));
        let back: (i64, String) = c.decode("runs").unwrap_or_default();
        assert_eq!(back, (17, "r1".to_owned()));
        assert!(c.decode::<(i64, String)>("workflows").is_err());
        assert!(Cursor::from_string("zz").decode::<i64>("runs").is_err());
    }

    #[test]
    fn limits_are_clamped() {
        for (asked, used) in [
            (0, 1),
            (1, 1),
            (50, 50),
            (1000, 1000),
            (1001, 1000),
            (usize::MAX, 1000),
        ] {
            assert_eq!(PageRequest::first(asked).effective_limit(), used, "{asked}");
        }
    }

    #[test]
    fn pages_from_candidates() {
        for (n, limit, items, has_next) in [
            (0, 3, 0, false),
            (3, 3, 3, false),
            (4, 3, 3, true),
            (1, 1, 1, false),
        ] {
            let p = Page::from_candidates("t", (0..n).collect::<Vec<u32>>(), limit, |x| *x);
            assert_eq!(
                (p.items.len(), p.next.is_some()),
                (items, has_next),
                "{n} of {limit}"
            );
            if let Some(c) = p.next {
                assert_eq!(
                    c.decode::<u32>("t").ok(),
                    Some(limit as u32 - 1),
                    "the cursor is the last kept item"
                );
            }
        }
    }
}
