//! Integers between the domain (u32 versions and attempts, u64 counts) and what
//! backends store (signed 64-bit), and ids read back from storage.

use crate::error::{Error, Result};

/// A count or sequence number as a signed 64-bit column value, saturating: counts
/// never reach `i64::MAX`, and a saturated value is still ordered correctly.
#[must_use]
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored signed integer that must fit `u32` (versions, attempts, priorities'
/// magnitudes).
///
/// # Errors
/// `CorruptData` naming `what` and the value when it does not fit.
pub fn stored_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::corrupt(format!("stored {what} {v} is out of range")))
}

/// A stored id that must pass its validation again: a row or key edited behind
/// flowstore's back is corrupt data, not invalid input.
///
/// # Errors
/// `CorruptData` naming `what` and the rule it breaks.
pub fn stored_id<T: TryFrom<String, Error = Error>>(s: String, what: &str) -> Result<T> {
    T::try_from(s).map_err(|e| Error::corrupt(format!("stored {what}: {}", e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, RunId};

    #[test]
    fn to_i64_saturates() {
        for (n, want) in [
            (0_u64, 0_i64),
            (42, 42),
            (i64::MAX as u64, i64::MAX),
            (i64::MAX as u64 + 1, i64::MAX),
            (u64::MAX, i64::MAX),
        ] {
            assert_eq!(to_i64(n), want, "{n}");
        }
    }

    #[test]
    fn stored_u32_refuses_what_does_not_fit() {
        for (v, want) in [
            (0_i64, Some(0_u32)),
            (7, Some(7)),
            (i64::from(u32::MAX), Some(u32::MAX)),
            (i64::from(u32::MAX) + 1, None),
            (-1, None),
            (i64::MIN, None),
        ] {
            match (stored_u32(v, "version"), want) {
                (Ok(got), Some(w)) => assert_eq!(got, w),
                (Err(e), None) => {
                    assert_eq!(e.kind(), ErrorKind::CorruptData);
                    assert!(e.message().contains(&v.to_string()), "{e}");
                }
                (got, want) => panic!("{v}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn stored_ids_are_validated_again() {
        assert!(stored_id::<RunId>("r1".into(), "run id").is_ok());
        let e = stored_id::<RunId>("../x".into(), "run id").err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::CorruptData));
    }
}
