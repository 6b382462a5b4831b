//! The queue model test (`storage_contract::model`) on the test PostgreSQL server. Its
//! clock is the server's, so each time step is a real pause: few cases, each short.

use adapter_postgres::{Config, PostgresStore};
use storage_contract::model::{check_queue_model, SubjectTime};
use storage_contract::servers::server_env;

#[test]
fn postgres_follows_the_reference() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let url = server_env("FLOWSTORE_TEST_POSTGRES_URL")?;
    let subject = rt
        .block_on(PostgresStore::connect(&Config::new(url)))
        .map_err(|e| e.to_string())?;
    check_queue_model(&rt, &subject, &SubjectTime::Real, 12)
}
