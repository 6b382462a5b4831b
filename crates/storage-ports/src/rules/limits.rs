//! Payload size limits (spec N4): checked before anything is written.

use serde_json::Value;

use crate::error::{Error, Result};

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
