//! The queue model test (`storage_contract::model`) on the test Redis server. Its clock
//! is the server's (`TIME`), so each time step is a real pause: few cases, each short.

use adapter_redis::RedisStore;
use storage_contract::model::{check_queue_model, SubjectTime};
use storage_contract::servers::server_env;

#[test]
fn redis_follows_the_reference() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let url = server_env("FLOWSTORE_TEST_REDIS_URL")?;
    let subject = rt
        .block_on(RedisStore::connect(&url))
        .map_err(|e| e.to_string())?;
    check_queue_model(&rt, &subject, &SubjectTime::Real, 12)
}
