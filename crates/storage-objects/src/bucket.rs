//! One bucket: reads that return the object's version, and writes that are
//! conditional on it.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use storage_ports::Result;

use crate::config::ObjectStoreConfig;
use crate::errors::map;
use crate::location::ObjectLocation;

/// The version of an object as the service reported it (its ETag, and its version
/// id where the bucket keeps versions): what a conditional write names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The entity tag.
    pub e_tag: Option<String>,
    /// The version id, on versioned buckets.
    pub version: Option<String>,
}

/// An object read whole, with its version.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its version when read.
    pub version: ObjectVersion,
}

/// A bucket of an S3-compatible service.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
}

fn path(at: &ObjectLocation) -> StorePath {
    StorePath::from(at.key())
}

impl Bucket {
    /// The bucket `name` as `config` reaches it. Nothing is sent until first use.
    ///
    /// # Errors
    /// `InvalidInput` when the settings do not make a client.
    pub fn open(config: &ObjectStoreConfig, name: &str) -> Result<Self> {
        Ok(Self {
            store: Arc::new(config.store_for(name)?),
            name: name.to_owned(),
        })
    }

    /// The bucket's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the object at `at` whole, or `None` when there is none.
    ///
    /// # Errors
    /// `Unavailable` when the service does not answer; a permanent error for refused
    /// credentials.
    pub async fn get(&self, at: &ObjectLocation) -> Result<Option<Object>> {
        let got = match self.store.get(&path(at)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(map(e, "objects.get", at)),
        };
        let version = ObjectVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|e| map(e, "objects.get", at))?;
        Ok(Some(Object { bytes, version }))
    }

    /// Writes a new object at `at` (`If-None-Match: *`): never over one that exists.
    ///
    /// # Errors
    /// `PreconditionFailed` when an object is there; `NotFound` for a missing bucket;
    /// `Unavailable`.
    pub async fn put_new(&self, at: &ObjectLocation, bytes: Bytes) -> Result<ObjectVersion> {
        self.put(at, bytes, PutMode::Create).await
    }

    /// Replaces the object at `at` only if it is still at `seen` (`If-Match`).
    ///
    /// # Errors
    /// `PreconditionFailed` when someone wrote it since; `Unavailable`.
    pub async fn put_over(
        &self,
        at: &ObjectLocation,
        bytes: Bytes,
        seen: &ObjectVersion,
    ) -> Result<ObjectVersion> {
        let mode = PutMode::Update(UpdateVersion {
            e_tag: seen.e_tag.clone(),
            version: seen.version.clone(),
        });
        self.put(at, bytes, mode).await
    }

    /// Writes `bytes` at `at` whatever is there. Only the test-only
    /// `unconditional-persist` feature uses it.
    ///
    /// # Errors
    /// `Unavailable`.
    #[cfg(feature = "unconditional-persist")]
    pub async fn put_anyway(&self, at: &ObjectLocation, bytes: Bytes) -> Result<ObjectVersion> {
        self.put(at, bytes, PutMode::Overwrite).await
    }

    async fn put(&self, at: &ObjectLocation, bytes: Bytes, mode: PutMode) -> Result<ObjectVersion> {
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let done = self
            .store
            .put_opts(&path(at), PutPayload::from_bytes(bytes), opts)
            .await
            .map_err(|e| map(e, "objects.put", at))?;
        Ok(ObjectVersion {
            e_tag: done.e_tag,
            version: done.version,
        })
    }

    /// The objects under the prefix `at`, with their sizes, in key order.
    ///
    /// # Errors
    /// `Unavailable`; a permanent error for refused credentials.
    pub async fn list(&self, at: &ObjectLocation) -> Result<Vec<(ObjectLocation, u64)>> {
        let prefix = StorePath::from(at.key().trim_end_matches('/'));
        let mut out: Vec<(ObjectLocation, u64)> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| {
                (
                    ObjectLocation::from_parts(&self.name, m.location.as_ref()),
                    m.size,
                )
            })
            .try_collect()
            .await
            .map_err(|e| map(e, "objects.list", at))?;
        out.sort_by(|a, b| a.0.key().cmp(b.0.key()));
        Ok(out)
    }

    /// Deletes the object at `at`; a missing one is not an error.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn delete(&self, at: &ObjectLocation) -> Result<()> {
        match self.store.delete(&path(at)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map(e, "objects.delete", at)),
        }
    }
}
