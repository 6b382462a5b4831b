//! Property tests (N1, N2) against the memory adapter.

use adapter_memory::MemoryStore;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use storage_ports::{CollectionName, ErrorKind, NewWorkflowVersion, TenantId, WorkflowId};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<u64>().prop_map(|u| Value::Number(u.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    /// N1: construction accepts exactly the strings the rule allows, and never panics.
    #[test]
    fn n1_workflow_ids_accept_exactly_the_rule(s in ".{0,140}") {
        let valid = !s.is_empty() && s.len() <= 128 && s != "." && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        match WorkflowId::new(s.clone()) {
            Ok(id) => { prop_assert!(valid, "accepted {s:?}"); prop_assert_eq!(id.as_str(), s.as_str()); }
            Err(e) => { prop_assert!(!valid, "refused {s:?}"); prop_assert_eq!(e.kind(), ErrorKind::InvalidInput); }
        }
    }

    /// N1: tenant ids follow `[a-z0-9][a-z0-9_-]{0,63}`.
    #[test]
    fn n1_tenant_ids_accept_exactly_the_rule(s in "[a-zA-Z0-9_./-]{0,70}") {
        let b = s.as_bytes();
        let valid = !b.is_empty() && b.len() <= 64 && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        prop_assert_eq!(TenantId::new(s.clone()).is_ok(), valid, "{:?}", s);
    }

    /// N2: any JSON value round-trips as a definition and as a document.
    #[test]
    fn n2_any_payload_round_trips(v in json_value()) {
        let rt = runtime()?;
        let store = MemoryStore::default().store_set();
        let t = TenantId::random();
        let (def, doc) = rt.block_on(async {
            let wf = WorkflowId::new("p")?;
            let put = store.workflows.put(&t, NewWorkflowVersion::next(wf.clone(), v.clone())).await?;
            let def = store.workflows.get(&t, &wf, put.meta.version).await?.definition;
            let c = CollectionName::new("c")?;
            let d = store.documents.create(&t, &c, None, v.clone()).await?;
            let doc = store.documents.get(&t, &c, &d.id).await?.body;
            Ok::<_, storage_ports::Error>((def, doc))
        }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&def, &v);
        prop_assert_eq!(&doc, &v);
    }
}
