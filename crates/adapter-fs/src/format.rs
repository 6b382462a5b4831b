//! The data directory's format version, kept in `<root>/flowstore-format` (a number
//! and a newline), so that a later flowstore can tell which layout it finds, and an
//! older one refuses a directory it would misread, as O3 does for databases.
//!
//! Format 2 is the layout docs/schema.md describes. Format 1 was the same without
//! `<tenant>/run-index/`; a directory without the file is a new one, or one written
//! before the file existed, which is format 1. Opening a format 1 directory builds the
//! run index, then records format 2 (a crash before that builds it again).

use std::path::Path;

use storage_ports::{Error, Result, SchemaStatus};

use crate::files;

/// The file that holds the format version.
pub(crate) const FILE: &str = "flowstore-format";
/// The format this flowstore writes and reads.
pub(crate) const CURRENT: i64 = 2;

/// Reads the directory's format, upgrading a format 1 directory (or one without the
/// file) to the current one.
///
/// # Errors
/// `InvalidInput` for a format newer than this flowstore knows; `CorruptData` for a
/// file that holds no number; `Unavailable` when it cannot be read or written.
pub(crate) fn open(root: &Path) -> Result<SchemaStatus> {
    let path = root.join(FILE);
    let applied = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<i64>().map_err(|_| {
            files::corrupt(&path, "it should hold the data format version, a number")
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
        Err(e) => {
            return Err(Error::unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    if applied < 1 {
        return Err(files::corrupt(&path, "data formats start at 1"));
    }
    if applied > CURRENT {
        return Err(Error::invalid_input(format!(
            "{} was written by a newer flowstore (data format {applied}; this build knows up to {CURRENT}); upgrade flowstore to open it",
            root.display()
        ))
        .with_context("file", path.display().to_string()));
    }
    if applied == 1 {
        let indexed = crate::run_index::rebuild(root)?;
        files::write_atomic(&path, format!("{CURRENT}\n").as_bytes())?;
        if indexed > 0 {
            tracing::info!(root = %root.display(), runs = indexed, "data format 1 upgraded to 2: runs indexed");
        }
    }
    Ok(SchemaStatus {
        applied: CURRENT,
        known: CURRENT,
    })
}
