//! The settings of the memory backend: none. The type exists so that `type: memory`
//! refuses keys it does not have, like every backend.

use serde::Deserialize;

/// Memory settings (none).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
