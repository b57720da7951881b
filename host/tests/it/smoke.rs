//! The shortest path through the host: log in, buy, read back.

use crate::harness::TestHost;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn login_buy_and_read_back() {
    let host = TestHost::start().await;
    assert_eq!(
        host.scan.loaded.len(),
        crate::harness::DEMO_MODULES.len(),
        "{:?}",
        host.scan
    );
    let (_, token) = host.login("smoke").await;
    let bought = host
        .ok(&token, "1103", json!({ "id": "potion", "count": 2 }))
        .await;
    assert_eq!(bought["gold"], 900);
    assert_eq!(bought["items"]["potion"], 2);
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(record["gold"], 900);
}
