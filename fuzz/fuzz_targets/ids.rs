//! Every id type: an accepted id is safe as a file name and a key part, prints as it
//! was given, and survives JSON; a refused one is invalid input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_ports::{
    CollectionName, CredentialKey, DocumentId, ErrorKind, JobId, MetricName, NodeId, QueueName,
    RunId, TenantId, WorkflowId,
};

macro_rules! check {
    ($t:ty, $s:expr) => {
        match <$t>::new($s) {
            Ok(id) => {
                assert_eq!(id.as_str(), $s);
                assert_eq!(id.to_string(), $s);
                assert!(!$s.is_empty());
                assert!(!$s.contains(['/', '\\', '\0', ':']), "{:?}", $s);
                assert!($s != "." && $s != "..");
                let json = serde_json::to_string(&id).expect("an id serialises");
                let back: $t = serde_json::from_str(&json).expect("an id parses again");
                assert_eq!(back, id);
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(serde_json::from_value::<$t>(serde_json::Value::from($s)).is_err());
            }
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check!(TenantId, s);
    check!(WorkflowId, s);
    check!(RunId, s);
    check!(NodeId, s);
    check!(CredentialKey, s);
    check!(QueueName, s);
    check!(JobId, s);
    check!(CollectionName, s);
    check!(DocumentId, s);
    check!(MetricName, s);
});
