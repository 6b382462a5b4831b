//! A backend from outside storage-wiring, registered by name and selected in YAML and
//! through `FLOWSTORE_*` variables, exactly as the built-in ones are. Its settings are
//! its own `Config`, which refuses keys it does not have.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use storage_ports::{NewRun, RunId, TenantId, Timestamp, WorkflowId};
use storage_wiring::{settings_error, Registry, Storage, StorageConfig, WiringError};

/// Every concern in memory, so that nothing is written in the working directory; the
/// YAML after it overrides what a test is about.
const MEMORY: &str = "workflows: {type: memory}\nmetrics: {type: memory}\ncredentials: {type: memory}\ndocuments: {type: memory}\n";

/// The outside backend's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalConfig {
    label: String,
}

/// The builtin backends plus `journal` (memory underneath), counting how often it is
/// opened and keeping the labels it was opened with.
fn registry(opened: Arc<AtomicUsize>, labels: Arc<std::sync::Mutex<Vec<String>>>) -> Registry {
    let mut r = Registry::builtin();
    r.register("journal", move |settings, ctx| {
        let (opened, labels) = (opened.clone(), labels.clone());
        Box::pin(async move {
            let c: JournalConfig = settings.parse("journal")?;
            if c.label.is_empty() {
                return Err(settings_error("journal", "`label` must not be empty"));
            }
            opened.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut l) = labels.lock() {
                l.push(c.label);
            }
            Ok(adapter_memory::open(
                &adapter_memory::Config::default(),
                ctx.payload_limit,
            ))
        })
    });
    r
}

#[tokio::test]
async fn an_outside_backend_is_selected_by_name() -> Result<(), Box<dyn std::error::Error>> {
    let opened = Arc::new(AtomicUsize::new(0));
    let labels = Arc::new(std::sync::Mutex::new(Vec::new()));
    let registry = registry(opened.clone(), labels.clone());
    assert!(registry.has("journal") && registry.has("memory"));

    let config = StorageConfig::from_yaml(&format!(
        "{MEMORY}runs:\n  type: journal\n  label: east\nqueue:\n  type: journal\n  label: east\n"
    ))?;
    let storage = Storage::build_with(&config, &registry).await?;
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "two concerns with the same type and settings share one instance"
    );
    let names: Vec<_> = storage
        .backends()
        .iter()
        .map(|(c, b)| format!("{c}={b}"))
        .collect();
    assert!(names.contains(&"runs=journal".to_owned()), "{names:?}");
    assert!(names.contains(&"workflows=memory".to_owned()), "{names:?}");
    let t = TenantId::new("acme")?;
    let run = storage
        .ports()
        .runs
        .start(
            &t,
            NewRun {
                run_id: RunId::new("r1")?,
                workflow_id: WorkflowId::new("etl")?,
                version: 1,
                inputs: json!({}),
                started_at: Timestamp::now(),
            },
        )
        .await?;
    assert_eq!(
        storage.ports().runs.get(&t, &run.run_id).await?.run_id,
        run.run_id
    );

    // Through the environment, as for any backend.
    let mut config = StorageConfig::memory();
    config.apply_env([
        ("FLOWSTORE_DOCUMENTS__LABEL".to_owned(), "west".to_owned()),
        ("FLOWSTORE_DOCUMENTS__TYPE".to_owned(), "journal".to_owned()),
    ])?;
    Storage::build_with(&config, &registry).await?;
    assert_eq!(
        labels.lock().map(|l| l.clone()).unwrap_or_default(),
        vec!["east".to_owned(), "west".to_owned()]
    );
    Ok(())
}

#[tokio::test]
async fn wrong_names_and_settings_are_explained() -> Result<(), Box<dyn std::error::Error>> {
    let registry = registry(Arc::default(), Arc::default());
    let build = |yaml: &str| {
        let config = StorageConfig::from_yaml(&format!("{MEMORY}queue: {{type: memory}}\n{yaml}"));
        let registry = registry.clone();
        async move {
            match config {
                Ok(c) => Storage::build_with(&c, &registry).await.err(),
                Err(e) => Some(e),
            }
        }
    };
    match build("runs:\n  type: jurnal\n").await {
        Some(e @ WiringError::UnknownBackend { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("jurnal") && text.contains("journal, keyring"),
                "{text}"
            );
        }
        other => panic!("expected UnknownBackend, got {other:?}"),
    }
    match build("runs:\n  type: journal\n  label: east\n  colour: blue\n").await {
        Some(e @ WiringError::Settings { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("unknown field `colour`") && text.contains("FLOWSTORE_RUNS__COLOUR"),
                "{text}"
            );
        }
        other => panic!("expected Settings, got {other:?}"),
    }
    match build("runs:\n  type: journal\n  label: ''\n").await {
        Some(e @ WiringError::Settings { .. }) => {
            assert!(e.to_string().contains("FLOWSTORE_RUNS__LABEL"), "{e}");
        }
        other => panic!("expected Settings, got {other:?}"),
    }
    // A built-in backend refuses keys it does not have, too.
    match build("runs:\n  type: sqlite\n  path: /tmp/x.db\n  pool: 3\n").await {
        Some(e @ WiringError::Settings { .. }) => {
            assert!(e.to_string().contains("unknown field `pool`"), "{e}");
        }
        other => panic!("expected Settings, got {other:?}"),
    }
    Ok(())
}
