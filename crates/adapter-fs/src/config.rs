//! The settings of the files backend (`workflows: { type: fs, path: ./defs }`).
//! Unknown keys are refused.

use std::path::PathBuf;

use serde::Deserialize;

/// Files settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data directory (default `./flowstore-data`); workflow files go under
    /// `<path>/<tenant>/workflows/`.
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("flowstore-data")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: default_path(),
        }
    }
}

impl Config {
    /// Settings for the directory `path`.
    #[must_use]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}
