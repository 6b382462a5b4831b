//! One module per page.

pub(crate) mod credentials;
pub(crate) mod metrics;
pub(crate) mod overview;
pub(crate) mod queue;
pub(crate) mod runs;
pub(crate) mod workflows;

/// The query every page takes.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TenantQuery {
    pub tenant: Option<String>,
}
