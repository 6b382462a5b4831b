//! How to reach an S3-compatible service.

use std::fmt;

use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use storage_ports::{Error, Result, Secret};

/// Endpoint, region and credentials of an S3-compatible service. What is left out
/// comes from the usual AWS environment variables (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
#[derive(Clone, Default)]
pub struct ObjectStoreConfig {
    /// The service's URL, for services other than AWS (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// The region (`us-east-1` unless set anywhere).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key: redacted in `Debug`, zeroized when dropped.
    pub secret_access_key: Option<Secret>,
}

impl fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreConfig")
            .field(
                "endpoint",
                &self
                    .endpoint
                    .as_deref()
                    .map(storage_ports::adapter_kit::redact_url),
            )
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ObjectStoreConfig {
    /// The service the `AWS_*` variables name: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`)
    /// and `AWS_REGION` (or `AWS_DEFAULT_REGION`) are read here, so that a loopback
    /// `http://` endpoint is allowed; the keys are read by the client itself.
    #[must_use]
    pub fn from_env() -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok())
                .filter(|v| !v.is_empty())
        };
        Self {
            endpoint: var(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: var(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: None,
            secret_access_key: None,
        }
    }

    /// The store for `bucket`: conditional puts on ETags (`If-Match`,
    /// `If-None-Match: *`), plain HTTP allowed only for a loopback endpoint.
    ///
    /// # Errors
    /// `InvalidInput` when the settings do not make a client (the message names the
    /// bucket, never a secret).
    pub fn store_for(&self, bucket: &str) -> Result<AmazonS3> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let Some(e) = &self.endpoint {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| e.starts_with(p));
            b = b
                .with_endpoint(e)
                .with_allow_http(loopback)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let Some(k) = &self.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &self.secret_access_key {
            b = b.with_secret_access_key(s.expose());
        }
        b.build().map_err(|e| {
            Error::invalid_input(format!(
                "the object store for bucket {bucket} cannot be set up: {}",
                crate::errors::describe(&e)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let c = ObjectStoreConfig {
            endpoint: Some("http://127.0.0.1:9000".into()),
            secret_access_key: Some(Secret::new("hunter2-very-secret".into())),
            ..ObjectStoreConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
