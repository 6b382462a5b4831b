//! Times between the domain's [`Timestamp`] (microseconds since the Unix epoch) and
//! PostgreSQL's `TIMESTAMPTZ` (microseconds too, so nothing is rounded either way).

use chrono::{DateTime, Utc};
use storage_ports::{Error, Result, Timestamp};

/// `t` as a `TIMESTAMPTZ` parameter.
///
/// # Errors
/// `InvalidInput` for a time no calendar date holds (hundreds of thousands of years
/// away); PostgreSQL itself refuses what lies before 4713 BC.
pub(crate) fn to_pg(t: Timestamp) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.as_micros()).ok_or_else(|| {
        Error::invalid_input(format!(
            "the time {} microseconds from 1970 is outside what PostgreSQL can store",
            t.as_micros()
        ))
    })
}

/// A stored `TIMESTAMPTZ` as a [`Timestamp`].
pub(crate) fn from_pg(d: DateTime<Utc>) -> Timestamp {
    Timestamp::from_micros(d.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::{from_pg, to_pg};
    use storage_ports::Timestamp;

    #[test]
    fn times_round_trip_to_the_microsecond() {
        for us in [0, 1, -1, 1_764_672_000_123_457, -62_135_596_800_000_000] {
            let t = Timestamp::from_micros(us);
            assert_eq!(to_pg(t).map(from_pg).ok(), Some(t), "{us}");
        }
        assert!(to_pg(Timestamp::from_micros(i64::MAX)).is_err());
    }
}
