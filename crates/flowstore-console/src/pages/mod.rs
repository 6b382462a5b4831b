//! One module per page.

pub(crate) mod api;
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

/// A listing's cursor from its query parameter.
pub(crate) fn cursor_of(
    c: Option<String>,
) -> Result<Option<storage_ports::Cursor>, crate::PageError> {
    c.map(|c| serde_json::from_value::<storage_ports::Cursor>(serde_json::Value::String(c)))
        .transpose()
        .map_err(|e| {
            crate::PageError::from(storage_ports::Error::invalid_input(format!("cursor: {e}")))
        })
}
