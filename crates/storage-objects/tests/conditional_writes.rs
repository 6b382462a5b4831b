//! Against a real S3-compatible server (moto, which `cargo xtask test` starts): writes
//! never overwrite what they did not see, and every failure has a kind a host can act
//! on, naming the object or the bucket and never the secret.

use bytes::Bytes;
use storage_contract::servers::server_env;
use storage_objects::{Bucket, ObjectLocation, ObjectStoreConfig, RemoteFile};
use storage_ports::{ErrorKind, Secret};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SECRET: &str = "not-a-real-secret-4d1f";

fn config(endpoint: String) -> ObjectStoreConfig {
    ObjectStoreConfig {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some(Secret::new(SECRET.into())),
    }
}

fn server() -> Result<(ObjectStoreConfig, String), String> {
    Ok((
        config(server_env("FLOWSTORE_TEST_S3_ENDPOINT")?),
        server_env("FLOWSTORE_TEST_S3_BUCKET")?,
    ))
}

fn place(bucket: &str, name: &str) -> Result<ObjectLocation, storage_ports::Error> {
    ObjectLocation::parse(&format!(
        "s3://{bucket}/conditional/{}/{name}",
        uuid::Uuid::now_v7()
    ))
}

#[tokio::test]
async fn a_new_object_is_written_once_and_replaced_only_at_the_version_seen() -> TestResult {
    let (config, name) = server()?;
    let bucket = Bucket::open(&config, &name)?;
    let at = place(&name, "db")?;
    let v1 = bucket.put_new(&at, Bytes::from_static(b"one")).await?;
    let again = bucket.put_new(&at, Bytes::from_static(b"other")).await;
    let e = again
        .err()
        .ok_or("a second If-None-Match: * put succeeded")?;
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert!(e.message().contains(&at.to_string()), "{e}");
    let v2 = bucket
        .put_over(&at, Bytes::from_static(b"two"), &v1)
        .await?;
    let stale = bucket.put_over(&at, Bytes::from_static(b"lost"), &v1).await;
    assert_eq!(
        stale.err().map(|e| e.kind()),
        Some(ErrorKind::PreconditionFailed)
    );
    let got = bucket.get(&at).await?.ok_or("the object vanished")?;
    assert_eq!((&got.bytes[..], &got.version), (&b"two"[..], &v2));
    Ok(())
}

#[tokio::test]
async fn the_loser_of_a_persist_race_keeps_its_copy_and_overwrites_nothing() -> TestResult {
    let (config, name) = server()?;
    let cache = std::env::temp_dir().join(format!("flowstore-objects-{}", uuid::Uuid::now_v7()));
    let at = place(&name, "metrics.db")?;
    let mut a = RemoteFile::open(Bucket::open(&config, &name)?, at.clone(), &cache).await?;
    let mut b = RemoteFile::open(Bucket::open(&config, &name)?, at.clone(), &cache).await?;
    assert!(!a.existed() && !b.existed());
    tokio::fs::write(a.path(), b"from a").await?;
    tokio::fs::write(b.path(), b"from b").await?;
    a.persist().await?;
    let lost = b
        .persist()
        .await
        .err()
        .ok_or("the second persist overwrote the first")?;
    assert_eq!(lost.kind(), ErrorKind::PreconditionFailed);
    assert!(lost.message().contains(&at.to_string()), "{lost}");
    assert_eq!(
        tokio::fs::read(b.path()).await?,
        b"from b",
        "the loser's copy is kept"
    );
    let bucket = Bucket::open(&config, &name)?;
    assert_eq!(
        &bucket.get(&at).await?.ok_or("no object")?.bytes[..],
        b"from a"
    );
    // The winner goes on persisting over its own version.
    tokio::fs::write(a.path(), b"from a, again").await?;
    a.persist().await?;
    a.close().await?;
    b.close().await?;
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

#[tokio::test]
async fn a_missing_bucket_and_an_unreachable_service_are_told_apart() -> TestResult {
    let (config, _) = server()?;
    let missing = Bucket::open(&config, "flowstore-no-such-bucket")?;
    let at = ObjectLocation::parse("s3://flowstore-no-such-bucket/x/db")?;
    let e = missing
        .put_new(&at, Bytes::from_static(b"x"))
        .await
        .err()
        .ok_or("a put into a missing bucket succeeded")?;
    assert!(
        !e.is_retryable(),
        "a missing bucket is not worth retrying: {e}"
    );
    assert!(e.to_string().contains("flowstore-no-such-bucket"), "{e}");
    assert!(
        !format!("{e:?}{e}").contains(SECRET),
        "the secret leaked: {e:?}"
    );

    // Nothing listens on port 9 (discard) of loopback.
    let down = Bucket::open(&self::config("http://127.0.0.1:9".into()), "flowstore-test")?;
    let at = ObjectLocation::parse("s3://flowstore-test/x/db")?;
    let e = down
        .get(&at)
        .await
        .err()
        .ok_or("a read from a closed port succeeded")?;
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(
        !format!("{e:?}{e}").contains(SECRET),
        "the secret leaked: {e:?}"
    );
    Ok(())
}
