//! Where pruned runs go before they are deleted (E9): gzip-compressed JSON lines, one
//! whole run per line, in a new file of a directory or a new object under a bucket
//! prefix. `flowstore prune --archive` and the retention task (`retention.archive`)
//! both write them; `flowstore runs import` reads them back.
//!
//! Nothing is created until the first run is written, so a round that prunes nothing
//! leaves no empty archive. A file is fsynced, with its directory, before the first
//! delete. An object is written with `If-None-Match: *` (never over another archive),
//! then read back and compared, size and SHA-256 digest, before the first delete.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use storage_ports::rules::retention::RunArchive;
use storage_ports::{CompleteRun, Error, Result, Timestamp};

/// An archive being written.
#[derive(Debug)]
pub struct Archive {
    to: Target,
    out: Option<GzEncoder<Vec<u8>>>,
    written: usize,
}

#[derive(Debug)]
enum Target {
    File(PathBuf),
    #[cfg(feature = "objects")]
    Object(storage_objects::Bucket, storage_objects::ObjectLocation),
}

impl Archive {
    /// A new archive of `tenant`'s runs in the directory `to`, or under the prefix
    /// `s3://bucket/prefix/` (its object store from `objects`).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed `s3://` location, or one given to a build
    /// without the `objects` feature.
    pub fn new(to: &str, tenant: &str, objects: &ObjectsConfig) -> Result<Self> {
        let name = format!("runs-{tenant}-{}.jsonl.gz", Timestamp::now().as_micros());
        let target = if to.starts_with("s3://") {
            object_target(to, &name, objects)?
        } else {
            Target::File(Path::new(to).join(name))
        };
        let _ = objects;
        Ok(Self {
            to: target,
            out: Some(GzEncoder::new(Vec::new(), Compression::default())),
            written: 0,
        })
    }

    /// Where the archive is (or will be, once a run is written).
    #[must_use]
    pub fn location(&self) -> String {
        match &self.to {
            Target::File(p) => p.display().to_string(),
            #[cfg(feature = "objects")]
            Target::Object(_, at) => at.to_string(),
        }
    }

    /// Runs written.
    #[must_use]
    pub fn written(&self) -> usize {
        self.written
    }
}

/// The object store an archive in a bucket uses.
#[cfg(feature = "objects")]
pub type ObjectsConfig = storage_objects::ObjectStoreConfig;
/// Without the `objects` feature there is no object store to configure.
#[cfg(not(feature = "objects"))]
pub type ObjectsConfig = ();

#[cfg(feature = "objects")]
fn object_target(to: &str, name: &str, objects: &ObjectsConfig) -> Result<Target> {
    let prefix = storage_objects::ObjectLocation::parse(to)?;
    let bucket = storage_objects::Bucket::open(objects, prefix.bucket())?;
    Ok(Target::Object(bucket, prefix.join(name)))
}

#[cfg(not(feature = "objects"))]
fn object_target(to: &str, _: &str, _: &ObjectsConfig) -> Result<Target> {
    Err(Error::invalid_input(format!(
        "{to}: this build has no object storage (storage-wiring's `objects` feature)"
    )))
}

fn write_error(e: impl std::fmt::Display) -> Error {
    Error::backend(format!("archive write failed: {e}"))
}

#[async_trait::async_trait]
impl RunArchive for Archive {
    fn write(&mut self, run: &CompleteRun) -> Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::backend("the archive is already committed"))?;
        serde_json::to_writer(&mut *out, run).map_err(write_error)?;
        out.write_all(b"\n").map_err(write_error)?;
        self.written += 1;
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        let bytes = self
            .out
            .take()
            .ok_or_else(|| Error::backend("the archive is already committed"))?
            .finish()
            .map_err(|e| Error::backend(format!("archive finish failed: {e}")))?;
        if self.written == 0 {
            return Ok(());
        }
        match &self.to {
            Target::File(path) => write_file(path, &bytes),
            #[cfg(feature = "objects")]
            Target::Object(bucket, at) => write_object(bucket, at, bytes).await,
        }
    }
}

/// Writes a new file and makes it and its directory entry durable: the runs are
/// deleted once this returns, so the archive must survive a crash right after.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::invalid_input(format!("cannot create {}: {e}", dir.display())))?;
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::invalid_input(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::backend(format!("archive sync failed ({}): {e}", path.display())))?;
    // The directory's entry too (and its parent's, which `create_dir_all` may have
    // just made).
    let above = dir.parent().filter(|p| !p.as_os_str().is_empty());
    for d in std::iter::once(dir).chain(above) {
        File::open(d).and_then(|f| f.sync_all()).map_err(|e| {
            Error::backend(format!(
                "archive directory sync failed ({}): {e}",
                d.display()
            ))
        })?;
    }
    Ok(())
}

#[cfg(feature = "objects")]
async fn write_object(
    bucket: &storage_objects::Bucket,
    at: &storage_objects::ObjectLocation,
    bytes: Vec<u8>,
) -> Result<()> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(&bytes);
    let size = bytes.len();
    bucket.put_new(at, bytes.into()).await?;
    // Only an archive read back whole lets the runs be deleted.
    let back = bucket.get(at).await?.ok_or_else(|| {
        Error::backend(format!(
            "the archive {at} is not there after it was written; nothing was deleted"
        ))
    })?;
    if back.bytes.len() != size || sha2::Sha256::digest(&back.bytes) != digest {
        return Err(Error::backend(format!(
            "the archive {at} read back differs from what was written ({} bytes, {size} expected); nothing was deleted",
            back.bytes.len()
        )));
    }
    Ok(())
}
