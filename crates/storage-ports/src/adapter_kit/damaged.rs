//! One damaged record never breaks a listing (W10 for every concern): a record that
//! cannot be decoded is set aside with its reason, so that the rest of the tenant is
//! still listed, queried, pruned and exported, while reading that record by its id is
//! a `CorruptData` error.

use crate::error::{ErrorKind, Result};

/// The decoded records and the errors of the damaged ones, in order. An error other
/// than `CorruptData` (the backend failing) stops the listing and is returned.
///
/// # Errors
/// The first error that is not `CorruptData`.
pub fn readable<T>(
    decoded: impl IntoIterator<Item = Result<T>>,
) -> Result<(Vec<T>, Vec<crate::Error>)> {
    let (mut ok, mut damaged) = (Vec::new(), Vec::new());
    for r in decoded {
        match r {
            Ok(v) => ok.push(v),
            Err(e) if e.kind() == ErrorKind::CorruptData => damaged.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok((ok, damaged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn damaged_records_are_set_aside_and_backend_errors_stop() {
        let (ok, damaged) =
            readable(vec![Ok(1), Err(Error::corrupt("bad row")), Ok(3)]).unwrap_or_default();
        assert_eq!((ok, damaged.len()), (vec![1, 3], 1));
        let stopped = readable(vec![Ok(1), Err(Error::unavailable("gone"))]);
        assert!(stopped.is_err_and(|e| e.kind() == ErrorKind::Unavailable));
    }
}
