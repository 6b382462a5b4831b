//! Timestamps with microsecond precision (spec N3).
//!
//! Every backend can store an `i64` of microseconds exactly (SQLite INTEGER, Postgres
//! `timestamptz`, a Redis score within 2^53 until year 2255), so that is the model; the
//! text form is RFC 3339 in UTC with six fractional digits, readable in YAML files.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An instant, as microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// The earliest time every backend keeps exactly: -(2^53 - 1) microseconds from
    /// the epoch (1684-06-24). Redis orders runs and jobs by a double-precision score,
    /// exact to the microsecond within 2^53; further out a time would come back
    /// rounded, or in a form no reader parses.
    pub const MIN_STORABLE: Self = Self(-(1 << 53) + 1);
    /// The latest time every backend keeps exactly: 2^53 - 1 microseconds from the
    /// epoch (2255-06-05).
    pub const MAX_STORABLE: Self = Self((1 << 53) - 1);

    /// `self`, when every backend can store it exactly (N3).
    ///
    /// # Errors
    /// `InvalidInput` naming `what` and the range.
    pub fn storable(self, what: &str) -> Result<Self> {
        if (Self::MIN_STORABLE..=Self::MAX_STORABLE).contains(&self) {
            Ok(self)
        } else {
            Err(Error::invalid_input(format!(
                "{what} {self} is outside the times every backend keeps exactly ({} to {}); nothing was written",
                Self::MIN_STORABLE,
                Self::MAX_STORABLE
            )))
        }
    }

    /// The current time, truncated to the microsecond.
    #[must_use]
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    /// From microseconds since the epoch.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch (rounded down).
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + d`, saturating.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// `self - d`, saturating.
    #[must_use]
    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_micros(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses RFC 3339 (any offset; sub-microsecond digits are truncated).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) when `s` is not RFC 3339.
    pub fn parse_rfc3339(s: &str) -> Result<Self> {
        let dt = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
            Error::invalid_input(format!("{s:?} is not an RFC 3339 timestamp: {e}"))
        })?;
        Ok(Self(dt.timestamp_micros()))
    }

    /// RFC 3339 in UTC with six fractional digits, e.g. `2026-11-23T14:25:54.123456Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            None => format!("@{}us", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_to_the_microsecond() {
        for micros in [0, 1, -1, 1_763_900_000_123_456, 253_402_300_799_999_999] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).ok(), Some(t));
        }
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
