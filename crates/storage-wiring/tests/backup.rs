//! `backup` then `restore` (issue 16): one tenant's whole store, from files and
//! SQLite (the embedded default's shape) through an S3-compatible bucket into
//! PostgreSQL, every count and digest checked against the manifest on the way in and
//! out; and through a directory into memory.

use serde_json::json;
use storage_contract::servers::{finished_run, fresh_tenant, server_env};
use storage_objects::ObjectStoreConfig;
use storage_ports::transfer::{digest_tenant, Concerns};
use storage_ports::{
    CollectionName, JobQueueExt as _, NewJob, NewWorkflowVersion, QueueName, Secret, TenantId,
    WorkflowId,
};
use storage_wiring::backup::{backup, restore};
use storage_wiring::{BackendConfig, Storage, StorageConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ALL: Concerns = Concerns::ALL;

fn objects() -> Result<ObjectStoreConfig, String> {
    Ok(ObjectStoreConfig {
        endpoint: Some(server_env("FLOWSTORE_TEST_S3_ENDPOINT")?),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some(Secret::new("testing".into())),
    })
}

/// Files for workflows, one SQLite file for the rest, in `root`.
async fn embedded(root: &std::path::Path) -> Result<Storage, Box<dyn std::error::Error>> {
    let mut config = StorageConfig::memory();
    config.workflows = BackendConfig::of("fs").with("path", root.display().to_string());
    let sqlite = BackendConfig::of("sqlite").with("path", root.join("f.db").display().to_string());
    config.runs = sqlite.clone();
    config.metrics = sqlite.clone();
    config.queue = sqlite.clone();
    config.documents = sqlite;
    Ok(Storage::build(&config).await?)
}

async fn seed(s: &Storage, t: &TenantId) -> TestResult {
    let p = s.ports();
    for wf in ["etl", "report"] {
        p.workflows
            .put(
                t,
                NewWorkflowVersion::next(WorkflowId::new(wf)?, json!({"nodes": [wf]})),
            )
            .await?;
    }
    for i in 0..40 {
        p.runs
            .store_complete(
                t,
                finished_run(
                    &format!("r{i}"),
                    if i % 2 == 0 { "etl" } else { "report" },
                    i,
                )?,
            )
            .await?;
    }
    let c = CollectionName::new("executions")?;
    for i in 0..10 {
        p.documents.create(t, &c, None, json!({"n": i})).await?;
    }
    let q = QueueName::new("nightly")?;
    for i in 0..5 {
        p.queue
            .enqueue(t, &q, NewJob::new(json!({"job": i})))
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_in_a_bucket_restores_into_postgres_with_every_digest() -> TestResult {
    let objects = objects()?;
    let bucket = server_env("FLOWSTORE_TEST_S3_BUCKET")?;
    let root = std::env::temp_dir().join(format!("flowstore-backup-src-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&root)?;
    let source = embedded(&root).await?;
    let t = fresh_tenant()?;
    seed(&source, &t).await?;

    let prefix = format!("s3://{bucket}/backups/{}/", uuid::Uuid::now_v7());
    let taken = backup(&source, &t, &prefix, &objects).await?;
    assert!(taken.location.starts_with(&prefix), "{}", taken.location);
    let counts: Vec<(String, u64)> = taken
        .manifest
        .concerns
        .iter()
        .map(|(k, v)| (k.clone(), v.count))
        .collect();
    assert!(counts.contains(&("runs".into(), 40)), "{counts:?}");
    assert!(counts.contains(&("documents".into(), 10)), "{counts:?}");
    assert!(counts.contains(&("workflows".into(), 2)), "{counts:?}");

    let mut pg = StorageConfig::memory();
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let postgres = BackendConfig::of("postgres").with("url", url);
    for c in [
        &mut pg.workflows,
        &mut pg.runs,
        &mut pg.metrics,
        &mut pg.queue,
        &mut pg.documents,
    ] {
        *c = postgres.clone();
    }
    let target = Storage::build(&pg).await?;
    let restored = restore(&target, &taken.location, &objects).await?;
    assert_eq!(restored.manifest, taken.manifest);
    assert!(restored.skipped.is_empty(), "{:?}", restored.skipped);
    let (a, b) = (
        digest_tenant(source.ports(), &t, ALL).await?,
        digest_tenant(target.ports(), &t, ALL).await?,
    );
    assert_eq!(a, b, "PostgreSQL holds other records than the source");

    // A rerun finds everything present and still verifies.
    let again = restore(&target, &taken.location, &objects).await?;
    // (Workflow versions are put again, which is idempotent for identical content.)
    for c in ["runs", "documents", "jobs"] {
        assert_eq!(again.copied.written.get(c), None, "{c}: {:?}", again.copied);
    }

    // A prefix without a manifest is not a backup.
    let e = restore(&target, &format!("{prefix}nothing-here/"), &objects)
        .await
        .err()
        .ok_or("restored from an empty prefix")?;
    assert_eq!(e.kind(), storage_ports::ErrorKind::NotFound, "{e}");
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_in_a_directory_restores_into_memory() -> TestResult {
    let root = std::env::temp_dir().join(format!("flowstore-backup-dir-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&root)?;
    let source = embedded(&root.join("src")).await?;
    let t = fresh_tenant()?;
    seed(&source, &t).await?;
    let taken = backup(
        &source,
        &t,
        &root.join("backups").display().to_string(),
        &ObjectStoreConfig::default(),
    )
    .await?;
    let target = Storage::build(&StorageConfig::memory()).await?;
    restore(&target, &taken.location, &ObjectStoreConfig::default()).await?;
    assert_eq!(
        digest_tenant(source.ports(), &t, ALL).await?,
        digest_tenant(target.ports(), &t, ALL).await?
    );
    // A backup that does not match its manifest is refused before anything is
    // loaded (here the manifest is edited; a damaged database fails the same check).
    let manifest = std::path::Path::new(&taken.location).join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest)?)?;
    m["concerns"]["runs"]["count"] = json!(41);
    std::fs::write(&manifest, serde_json::to_vec(&m)?)?;
    let fresh = Storage::build(&StorageConfig::memory()).await?;
    let e = restore(&fresh, &taken.location, &ObjectStoreConfig::default())
        .await
        .err()
        .ok_or("a backup that differs from its manifest was restored")?;
    assert_eq!(e.kind(), storage_ports::ErrorKind::CorruptData, "{e}");
    assert_eq!(
        digest_tenant(fresh.ports(), &t, ALL)
            .await?
            .get("runs")
            .map(|d| d.count),
        Some(0),
        "a refused backup loaded runs"
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
