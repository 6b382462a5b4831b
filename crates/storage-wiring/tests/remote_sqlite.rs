//! A SQLite database in a bucket shared by 8 writer processes (issue 16): each records
//! 25 builds, each build a unit run through `with_remote_sqlite` (download, write,
//! persist over the version downloaded, and again on a lost race). Every one of the
//! 200 builds is in the database afterwards.
//!
//! Built with `--features storage-objects/unconditional-persist` (persist overwrites),
//! the same test loses builds: the evidence that it can fail.

use std::path::Path;

use serde_json::json;
use storage_contract::servers::server_env;
use storage_objects::{ObjectLocation, ObjectStoreConfig};
use storage_ports::{CollectionName, DocumentFilter, DocumentId, PageRequest, Secret, TenantId};
use storage_wiring::remote_sqlite::{with_remote_sqlite, RemoteSqlite};

const ROLE: &str = "FLOWSTORE_REMOTE_SQLITE_WRITER";
const TEST: &str = "eight_processes_recording_builds_lose_none";
const WRITERS: usize = 8;
const BUILDS: usize = 25;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config() -> Result<ObjectStoreConfig, String> {
    Ok(ObjectStoreConfig {
        endpoint: Some(server_env("FLOWSTORE_TEST_S3_ENDPOINT")?),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some(Secret::new("testing".into())),
    })
}

fn names() -> Result<(TenantId, CollectionName), storage_ports::Error> {
    Ok((TenantId::new("ci")?, CollectionName::new("builds")?))
}

/// One writer process: 25 builds, each acknowledged once persisted.
async fn record_builds(dir: &Path) -> TestResult {
    let at = ObjectLocation::parse(std::fs::read_to_string(dir.join("object"))?.trim())?;
    storage_contract::crash::wait_for_start(dir);
    let config = config()?;
    let (t, c) = names()?;
    let me = uuid::Uuid::now_v7();
    for i in 0..BUILDS {
        let id = DocumentId::new(format!("{me}-{i}"))?;
        let (t, c, id2) = (t.clone(), c.clone(), id.clone());
        with_remote_sqlite(&config, &at, &dir.join("cache"), 500, move |set| {
            let (t, c, id) = (t.clone(), c.clone(), id2.clone());
            async move {
                set.documents
                    .create(&t, &c, Some(id), json!({"bundle_bytes": 1000 + i}))
                    .await
                    .map(|_| ())
            }
        })
        .await?;
        storage_contract::crash::ack(id.as_str());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_recording_builds_lose_none() -> TestResult {
    if let Ok(dir) = std::env::var(ROLE) {
        return record_builds(Path::new(&dir)).await;
    }
    let bucket = server_env("FLOWSTORE_TEST_S3_BUCKET")?;
    let run = uuid::Uuid::now_v7();
    let at = ObjectLocation::parse(&format!("s3://{bucket}/remote-sqlite/{run}/builds.db"))?;
    let dir = std::env::temp_dir().join(format!("flowstore-remote-sqlite-{run}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("object"), at.to_string())?;
    let acked = storage_contract::crash::run_writers(TEST, ROLE, &dir, WRITERS)?;
    assert_eq!(
        acked.len(),
        WRITERS * BUILDS,
        "writers acknowledged {} builds",
        acked.len()
    );

    let db = RemoteSqlite::open(&config()?, &at, &dir.join("cache")).await?;
    let (t, c) = names()?;
    let page = db
        .store_set()
        .documents
        .list(&t, &c, &DocumentFilter::all(), PageRequest::first(1000))
        .await?;
    let stored: std::collections::BTreeSet<String> = page
        .items
        .iter()
        .map(|d| d.id.as_str().to_owned())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    db.close().await?;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged builds were lost (last writer won): {:?}",
        lost.len(),
        acked.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    eprintln!(
        "{} builds from {WRITERS} processes, all in {at}",
        stored.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// From config: `type: sqlite` with `path: s3://...` opens the database from the
/// bucket; `Storage::persist` uploads it only when it changed, so a read-only user
/// neither creates the object nor races a writer; a second storage reads what the
/// first persisted.
#[tokio::test]
async fn a_configured_sqlite_in_a_bucket_persists_only_what_changed() -> TestResult {
    let bucket = server_env("FLOWSTORE_TEST_S3_BUCKET")?;
    let endpoint = server_env("FLOWSTORE_TEST_S3_ENDPOINT")?;
    let at = format!(
        "s3://{bucket}/configured/{}/flowstore.db",
        uuid::Uuid::now_v7()
    );
    let yaml = format!(
        "documents: {{ type: sqlite, path: '{at}', endpoint: '{endpoint}', region: us-east-1, \
         access_key_id: testing, secret_access_key: testing }}\n"
    );
    let config = storage_wiring::StorageConfig::from_yaml(&yaml)?;
    let (t, c) = names()?;

    let reader = storage_wiring::Storage::build(&config).await?;
    assert_eq!(reader.remote_databases(), vec![at.clone()]);
    assert_eq!(
        reader.persist().await?,
        0,
        "nothing changed, nothing uploaded"
    );
    let objects = storage_objects::Bucket::open(&self::config()?, &bucket)?;
    let location = ObjectLocation::parse(&at)?;
    assert!(
        objects.get(&location).await?.is_none(),
        "a read-only storage created the object"
    );

    let writer = storage_wiring::Storage::build(&config).await?;
    writer
        .ports()
        .documents
        .create(
            &t,
            &c,
            Some(DocumentId::new("b1")?),
            json!({"coverage": 81.5}),
        )
        .await?;
    assert_eq!(writer.persist().await?, 1);
    assert_eq!(
        writer.persist().await?,
        0,
        "persisted twice without a change"
    );

    let later = storage_wiring::Storage::build(&config).await?;
    let doc = later
        .ports()
        .documents
        .get(&t, &c, &DocumentId::new("b1")?)
        .await?;
    assert_eq!(doc.body, json!({"coverage": 81.5}));

    // The reader opened before the write: its view is stale, and a write through it
    // loses the race instead of overwriting the writer's database.
    reader
        .ports()
        .documents
        .create(&t, &c, Some(DocumentId::new("b2")?), json!({}))
        .await?;
    let e = reader
        .persist()
        .await
        .err()
        .ok_or("a stale copy overwrote the bucket")?;
    assert_eq!(e.kind(), storage_ports::ErrorKind::PreconditionFailed);
    assert!(e.message().contains(&at), "{e}");
    Ok(())
}
