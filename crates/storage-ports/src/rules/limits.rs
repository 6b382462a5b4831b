//! Limits on what is stored (spec N4), checked before anything is written: every
//! payload and every long text within the payload limit, short names within
//! [`SHORT_TEXT_MAX_BYTES`], every time within what every backend keeps exactly
//! ([`crate::Timestamp::storable`]).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::metrics::PatternObservation;
use crate::queue::{DeadState, JobFailure, NewJob};
use crate::run::{CompleteRun, NewRun, RunError, RunOutcome, RunStep};
use crate::workflow::NewWorkflowVersion;

/// The deepest nesting of arrays and objects a payload may have. JSON readers refuse
/// deeper documents (serde_json at 128 levels), and a payload is stored inside a few
/// levels of its own (a run head, an event, an archive line), so anything deeper would
/// be stored and then never read back.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// How deep `value` nests, counted without recursion (so a hostile payload cannot
/// exhaust the stack here).
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1_usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => deepest = deepest.max(d.saturating_sub(1)),
        }
    }
    deepest
}

/// The longest short name: an error kind, a node type, a variable name, an author, a
/// pattern kind or key.
pub const SHORT_TEXT_MAX_BYTES: usize = 256;

/// Checks a short name (`what` in the error).
///
/// # Errors
/// `InvalidInput` stating the length and the limit.
pub fn check_short(what: &str, text: &str) -> Result<()> {
    if text.len() > SHORT_TEXT_MAX_BYTES {
        return Err(Error::invalid_input(format!(
            "{what} is {} bytes, above the limit of {SHORT_TEXT_MAX_BYTES} bytes; nothing was written",
            text.len()
        )));
    }
    Ok(())
}

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
    /// Checks `value` (called `what` in the error): its serialized size and its
    /// nesting ([`MAX_PAYLOAD_DEPTH`]); returns the size.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) stating the size or the depth and
    /// the limit.
    pub fn check(&self, what: &str, value: &Value) -> Result<usize> {
        let nesting = depth(value);
        if nesting > MAX_PAYLOAD_DEPTH {
            return Err(Error::invalid_input(format!(
                "{what} nests {nesting} levels of arrays and objects, above the limit of {MAX_PAYLOAD_DEPTH}; nothing was written"
            )));
        }
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
    /// Checks a long text (`what` in the error) against the payload limit.
    ///
    /// # Errors
    /// `InvalidInput` stating the size and the limit.
    pub fn check_text(&self, what: &str, text: &str) -> Result<()> {
        if text.len() > self.0 {
            return Err(Error::invalid_input(format!(
                "{what} is {} bytes, above the limit of {} bytes; nothing was written",
                text.len(),
                self.0
            ))
            .with_context("size", text.len())
            .with_context("limit", self.0));
        }
        Ok(())
    }

    /// Checks one run step: node type, inputs, outputs, error text and times, or the
    /// variable's name, values and time.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_step(&self, step: &RunStep) -> Result<()> {
        match step {
            RunStep::Node(n) => {
                check_short("node type", &n.node_type)?;
                self.check("node inputs", &n.inputs)?;
                self.check("node outputs", &n.outputs)?;
                if let Some(e) = &n.error {
                    self.check_text("node error", e)?;
                }
                n.started_at.storable("node start")?;
                if let Some(t) = n.ended_at {
                    t.storable("node end")?;
                }
            }
            RunStep::Snapshot(s) => {
                check_short("variable name", &s.name)?;
                self.check("variable old value", &s.old_value)?;
                self.check("variable new value", &s.new_value)?;
                s.at.storable("snapshot time")?;
            }
        }
        Ok(())
    }

    /// Checks a run's start: its inputs and start time.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_new_run(&self, run: &NewRun) -> Result<()> {
        self.check("run inputs", &run.inputs)?;
        run.started_at.storable("run start").map(|_| ())
    }

    /// Checks a run's end: a terminal status, its end time, output and error.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_outcome(&self, outcome: &RunOutcome) -> Result<()> {
        outcome.validate()?;
        outcome.ended_at.storable("run end")?;
        if let Some(o) = &outcome.output {
            self.check("run output", o)?;
        }
        if let Some(e) = &outcome.error {
            self.check_run_error(e)?;
        }
        Ok(())
    }

    fn check_run_error(&self, e: &RunError) -> Result<()> {
        check_short("run error kind", &e.kind)?;
        self.check_text("run error message", &e.message)?;
        self.check("run error context", &e.context).map(|_| ())
    }

    /// Checks a whole run: its consistency ([`CompleteRun::validate`]), every payload,
    /// text and time.
    ///
    /// # Errors
    /// `InvalidInput` naming the inconsistency or the field.
    pub fn check_run(&self, run: &CompleteRun) -> Result<()> {
        run.validate()?;
        let head = &run.run;
        self.check("run inputs", &head.inputs)?;
        head.started_at.storable("run start")?;
        if let Some(t) = head.ended_at {
            t.storable("run end")?;
        }
        if let Some(o) = &head.output {
            self.check("run output", o)?;
        }
        if let Some(e) = &head.error {
            self.check_run_error(e)?;
        }
        run.steps.iter().try_for_each(|s| self.check_step(s))
    }

    /// Checks a job: its fields ([`NewJob::validate`]), its payload and run-at time.
    ///
    /// # Errors
    /// `InvalidInput` naming the field or stating size and limit.
    pub fn check_job(&self, job: &NewJob) -> Result<()> {
        job.validate()?;
        if let Some(at) = job.run_at {
            at.storable("job run-at")?;
        }
        self.check("job payload", &job.payload).map(|_| ())
    }

    /// Checks a job failure's text.
    ///
    /// # Errors
    /// `InvalidInput` stating size and limit.
    pub fn check_failure(&self, failure: &JobFailure) -> Result<()> {
        self.check_text("job failure error", &failure.error)
    }

    /// Checks an imported dead letter's state: its last error and time of death.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_dead(&self, dead: &DeadState) -> Result<()> {
        self.check_text("dead letter error", &dead.last_error)?;
        dead.died_at.storable("time of death").map(|_| ())
    }

    /// Checks a workflow version: its definition, author and creation time.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_workflow(&self, new: &NewWorkflowVersion) -> Result<()> {
        if let Some(a) = &new.author {
            check_short("author", a)?;
        }
        if let Some(t) = new.created_at {
            t.storable("creation time")?;
        }
        self.check("workflow definition", &new.definition)
            .map(|_| ())
    }

    /// Checks a pattern observation: kind, key, description and data.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn check_pattern(&self, p: &PatternObservation) -> Result<()> {
        check_short("pattern kind", &p.kind)?;
        check_short("pattern key", &p.key)?;
        self.check_text("pattern description", &p.description)?;
        self.check("pattern data", &p.data).map(|_| ())
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
mod depth_tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn depth_counts_containers_and_the_limit_holds() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [1, {"b": 2}]})), 3);
        assert_eq!(depth(&nested(MAX_PAYLOAD_DEPTH)), MAX_PAYLOAD_DEPTH);
        let limit = PayloadLimit::default();
        assert!(limit.check("p", &nested(MAX_PAYLOAD_DEPTH)).is_ok());
        assert!(limit
            .check("p", &nested(MAX_PAYLOAD_DEPTH + 1))
            .is_err_and(|e| e.kind() == crate::ErrorKind::InvalidInput));
        // Far deeper: refused before it is serialized (which would recurse).
        assert!(limit.check("p", &nested(500)).is_err());
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
