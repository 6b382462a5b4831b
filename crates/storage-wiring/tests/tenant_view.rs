//! The wiring builds memory from config and the tenant view keeps tenants apart.

use serde_json::json;
use storage_ports::{ErrorKind, NewWorkflowVersion, TenantId, WorkflowId};
use storage_wiring::{Storage, StorageConfig, WiringError};

#[tokio::test]
async fn tenant_views_are_isolated_and_share_one_store() -> Result<(), Box<dyn std::error::Error>> {
    let storage = Storage::build(&StorageConfig::memory()).await?;
    let (a, b) = (
        storage.tenant(TenantId::new("acme")?),
        storage.tenant(TenantId::new("globex")?),
    );
    let wf = WorkflowId::new("etl")?;
    a.put_workflow(NewWorkflowVersion::next(wf.clone(), json!({"n": 1})))
        .await?;
    assert_eq!(a.latest_workflow(&wf).await?.meta.version, 1);
    assert_eq!(
        b.latest_workflow(&wf).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(storage.capabilities().backend, "memory");
    Ok(())
}

#[tokio::test]
async fn an_unknown_keyring_store_names_the_key_and_the_choices() {
    let mut config = StorageConfig::memory();
    let set = config.apply_env([
        (
            "FLOWSTORE_CREDENTIALS__TYPE".to_owned(),
            "keyring".to_owned(),
        ),
        (
            "FLOWSTORE_CREDENTIALS__STORE".to_owned(),
            "wallet".to_owned(),
        ),
    ]);
    assert!(set.is_ok());
    match Storage::build(&config).await {
        Err(e @ WiringError::Settings { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("FLOWSTORE_CREDENTIALS__STORE")
                    && text.contains("secret-service, keyutils, auto"),
                "{text}"
            );
        }
        other => panic!("expected Settings, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_backend_without_url_names_the_key_and_variable() {
    let mut config = StorageConfig::memory();
    let set = config.apply_env([("FLOWSTORE_RUNS__TYPE".to_owned(), "postgres".to_owned())]);
    assert!(set.is_ok());
    match Storage::build(&config).await {
        Err(e @ WiringError::Settings { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("missing field `url`") && text.contains("FLOWSTORE_RUNS__URL"),
                "{text}"
            );
        }
        other => panic!("expected Settings, got {other:?}"),
    }
}

/// A unit of work through the tenant view (the seed's `storage.transaction`), and
/// its absence when documents are not on the instance that holds runs and the queue.
#[tokio::test]
async fn units_of_work_need_runs_queue_and_documents_on_one_instance(
) -> Result<(), Box<dyn std::error::Error>> {
    let storage = Storage::build(&StorageConfig::memory()).await?;
    let acme = storage.tenant(TenantId::new("acme")?);
    let executions = storage_ports::CollectionName::new("executions")?;
    let q = storage_ports::QueueName::new("runs")?;
    let (e2, q2) = (executions.clone(), q.clone());
    let doc = acme
        .transaction(move |tx| {
            Box::pin(async move {
                let doc = tx.create_document(&e2, None, json!({"plan": "p1"})).await?;
                tx.enqueue(
                    &q2,
                    storage_ports::NewJob::new(json!({"execution": doc.id.as_str()})),
                )
                .await?;
                Ok::<_, storage_ports::Error>(doc)
            })
        })
        .await?;
    assert_eq!(acme.document(&executions, &doc.id).await?, doc);
    assert!(storage.capabilities().transactions);

    let dir = std::env::temp_dir().join(format!("flowstore-units-{}", std::process::id()));
    let mut config = StorageConfig::memory();
    config.documents =
        storage_wiring::BackendConfig::of("fs").with("path", dir.display().to_string());
    let split = Storage::build(&config).await?;
    assert!(
        !split.capabilities().transactions,
        "documents live elsewhere"
    );
    let r = split
        .tenant(TenantId::new("acme")?)
        .transaction(|tx| {
            Box::pin(async move { tx.get_document(&executions, &doc.id).await.map(|_| ()) })
        })
        .await;
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::Unsupported));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
