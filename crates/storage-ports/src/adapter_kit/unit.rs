//! The rule every unit of work applies to its own calls (T5): an answer leaves the
//! unit usable, a failure of the backend ends it.
//!
//! The two are told apart by the error's source: the helpers of [`super::errors`]
//! build answers without one, while a mapped driver error keeps the driver's error as
//! its source. That matters on PostgreSQL, where any failed statement aborts the
//! transaction and a later `COMMIT` would quietly roll back.

use crate::error::{Error, Result};

/// What ended a unit, if anything did.
#[derive(Debug, Default)]
pub struct UnitHealth {
    ended_by: Option<String>,
}

impl UnitHealth {
    /// Passes `result` through, remembering a backend failure.
    ///
    /// # Errors
    /// `result`'s error.
    pub fn observe<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if std::error::Error::source(e).is_some() && self.ended_by.is_none() {
                self.ended_by = Some(e.to_string());
            }
        }
        result
    }

    /// Fails when an earlier call ended the unit.
    ///
    /// # Errors
    /// `Backend`, naming the failure that ended it.
    pub fn check(&self) -> Result<()> {
        match &self.ended_by {
            None => Ok(()),
            Some(why) => Err(Error::backend(format!(
                "this unit of work ended when the backend failed ({why}); nothing of it \
                 will be written: roll it back and run it again"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_leave_the_unit_usable() {
        let mut h = UnitHealth::default();
        let r: Result<()> = Err(Error::already_exists("document d1 exists"));
        assert!(h.observe(r).is_err());
        assert!(h.check().is_ok());
    }

    #[test]
    fn a_backend_failure_ends_the_unit() {
        let mut h = UnitHealth::default();
        let r: Result<()> = Err(Error::backend("statement failed")
            .with_source(std::io::Error::other("connection reset")));
        assert!(h.observe(r).is_err());
        let e = h.check().err().map(|e| e.message().to_owned());
        assert!(e.is_some_and(|m| m.contains("statement failed")));
    }
}
