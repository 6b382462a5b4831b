//! Engine nodes whose clocks are off share one PostgreSQL: every queue decision takes
//! the server's time (`storage_contract::skew` says what must hold and how the other
//! node, a second process under libfaketime, is run).

use adapter_postgres::{Config, PostgresStore};
use storage_contract::servers::server_env;

const TEST: &str = "a_node_with_a_skewed_clock_decides_nothing_by_it";

#[tokio::test]
async fn a_node_with_a_skewed_clock_decides_nothing_by_it() -> Result<(), Box<dyn std::error::Error>>
{
    let store =
        PostgresStore::connect(&Config::new(server_env("FLOWSTORE_TEST_POSTGRES_URL")?)).await?;
    storage_contract::skew::skewed_nodes_decide_nothing(&store, TEST).await
}
