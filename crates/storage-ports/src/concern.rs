//! The concerns flowstore keeps. Each concern is chosen a backend of its own in
//! config, and each port operation belongs to one (see [`crate::operation`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A concern flowstore keeps; each has its own backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    /// Workflow definitions.
    Workflows,
    /// Run logs.
    Runs,
    /// Metrics.
    Metrics,
    /// Credentials.
    Credentials,
    /// The job queue.
    Queue,
    /// Documents.
    Documents,
}

impl Concern {
    /// Every concern.
    pub const ALL: [Self; 6] = [
        Self::Workflows,
        Self::Runs,
        Self::Metrics,
        Self::Credentials,
        Self::Queue,
        Self::Documents,
    ];

    /// The config key, e.g. `runs`.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Workflows => "workflows",
            Self::Runs => "runs",
            Self::Metrics => "metrics",
            Self::Credentials => "credentials",
            Self::Queue => "queue",
            Self::Documents => "documents",
        }
    }
}

impl fmt::Display for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
