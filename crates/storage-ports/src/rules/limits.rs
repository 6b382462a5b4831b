//! Payload size limits (spec N4): checked before anything is written.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::queue::NewJob;
use crate::run::{CompleteRun, RunStep};

/// The default largest payload: 16 MiB of serialized JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// The largest payload an adapter accepts, in bytes of compact JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimit(pub usize);

impl Default for PayloadLimit {
    fn default() -> Self {
        Self(DEFAULT_MAX_PAYLOAD_BYTES)
    }
}

impl PayloadLimit {
    /// Checks `value` (called `what` in the error) and returns its serialized size.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) stating the size and the limit.
    pub fn check(&self, what: &str, value: &Value) -> Result<usize> {
        let mut counter = ByteCounter(0);
        // Writing into a counter cannot fail; a Value always serializes.
        let _ = serde_json::to_writer(&mut counter, value);
        if counter.0 > self.0 {
            return Err(Error::invalid_input(format!(
                "{what} is {} bytes, above the limit of {} bytes; nothing was written",
                counter.0, self.0
            ))
            .with_context("size", counter.0)
            .with_context("limit", self.0));
        }
        Ok(counter.0)
    }
}

impl PayloadLimit {
    /// Checks the payloads of one run step (node inputs and outputs, variable values).
    ///
    /// # Errors
    /// As [`PayloadLimit::check`].
    pub fn check_step(&self, step: &RunStep) -> Result<()> {
        match step {
            RunStep::Node(n) => {
                self.check("node inputs", &n.inputs)?;
                self.check("node outputs", &n.outputs)?;
            }
            RunStep::Snapshot(s) => {
                self.check("variable old value", &s.old_value)?;
                self.check("variable new value", &s.new_value)?;
            }
        }
        Ok(())
    }

    /// Checks a whole run: its consistency ([`CompleteRun::validate`]) and every payload.
    ///
    /// # Errors
    /// `InvalidInput` naming the inconsistency or the oversized payload.
    pub fn check_run(&self, run: &CompleteRun) -> Result<()> {
        run.validate()?;
        self.check("run inputs", &run.run.inputs)?;
        if let Some(o) = &run.run.output {
            self.check("run output", o)?;
        }
        run.steps.iter().try_for_each(|s| self.check_step(s))
    }

    /// Checks a job: its fields ([`NewJob::validate`]) and its payload.
    ///
    /// # Errors
    /// `InvalidInput` naming the field or stating size and limit.
    pub fn check_job(&self, job: &NewJob) -> Result<()> {
        job.validate()?;
        self.check("job payload", &job.payload).map(|_| ())
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_at_and_around_the_limit() {
        // `"xx...x"` is the length plus two quote bytes.
        let text = |n: usize| Value::String("x".repeat(n));
        let limit = PayloadLimit(10);
        for (value, ok) in [
            (json!(null), true),
            (text(8), true),
            (text(9), false),
            (json!([1, 2, 3, 4]), true),
            (json!({"k": "123456"}), false),
        ] {
            let got = limit.check("payload", &value);
            assert_eq!(got.is_ok(), ok, "{value}");
            if let Err(e) = got {
                assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
                assert!(e.message().contains("above the limit of 10 bytes"), "{e}");
            }
        }
        assert_eq!(limit.check("payload", &text(8)).ok(), Some(10));
    }

    #[test]
    fn a_job_is_checked_for_its_fields_and_payload() {
        let limit = PayloadLimit(16);
        assert!(limit.check_job(&NewJob::new(json!({"n": 1}))).is_ok());
        assert!(limit
            .check_job(&NewJob::new(json!("x".repeat(32))))
            .is_err());
        assert!(limit
            .check_job(&NewJob::new(json!(1)).with_max_attempts(0))
            .is_err());
    }
}
