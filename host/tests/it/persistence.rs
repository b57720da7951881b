//! What survives a restart of the host: tokens, records, module data.

use crate::harness::TestHost;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_records_and_module_data_survive_a_restart() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("durable").await;
    host.ok(&token, "1103", json!({ "id": "sword", "count": 1 }))
        .await;
    host.ok(&token, "1001", json!({})).await;
    let before = host.ok(&token, "1203", json!({})).await;

    let (dirs, clock) = host.stop().await;
    let host = TestHost::start_with_clock(dirs, clock, |_| {}).await;

    assert_eq!(
        host.ok(&token, "1203", json!({})).await,
        before,
        "same token, same record"
    );
    let (_, again) = host.logic(&token, "1001", json!({})).await;
    assert_eq!(
        again["ret"], 1,
        "the sign-in of today is remembered: {again}"
    );
    let (same_id, _) = host.login("durable").await;
    assert_eq!(same_id, player_id);
}
