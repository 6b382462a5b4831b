//! Engine nodes whose clocks are off share one Redis: every queue script reads the
//! server's clock (`TIME`) (`storage_contract::skew` says what must hold and how the
//! other node, a second process under libfaketime, is run).

use adapter_redis::RedisStore;
use storage_contract::servers::server_env;

const TEST: &str = "a_node_with_a_skewed_clock_decides_nothing_by_it";

#[tokio::test]
async fn a_node_with_a_skewed_clock_decides_nothing_by_it() -> Result<(), Box<dyn std::error::Error>>
{
    let store = RedisStore::connect(&server_env("FLOWSTORE_TEST_REDIS_URL")?).await?;
    storage_contract::skew::skewed_nodes_decide_nothing(&store, TEST).await
}
