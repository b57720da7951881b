//! Error replies never show paths, stack traces, SQL or another player's data, and no command
//! reads or changes another player's record, whatever its data names.

use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use crate::modules::with_faulty;
use serde_json::{json, Value};

/// What no reply may contain: internals of the host, and the other player's identity.
fn assert_clean(reply: &Value, forbidden: &[&str]) {
    let text = reply.to_string();
    for word in forbidden {
        assert!(!text.contains(word), "`{word}` leaked in {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn error_replies_show_no_path_trace_sql_or_other_player() {
    let host = with_faulty(|config| {
        config.plugins.call_timeout_ms = 200;
        config.plugins.max_reply_bytes = 4096;
    })
    .await;
    let (victim_id, _) = host.login("victim-account").await;
    let (_, token) = host.login("curious").await;
    let data_dir = host.dirs.data().display().to_string();
    let plugins_dir = host.dirs.plugins().display().to_string();
    let forbidden = [
        data_dir.as_str(),
        plugins_dir.as_str(),
        ".rs:",
        "src/",
        "panicked",
        "boom on purpose",
        "backtrace",
        "SELECT",
        "INSERT",
        "UPDATE ",
        "sqlite",
        "module_data",
        victim_id.as_str(),
        "victim-account",
    ];
    let mut failures = vec![
        host.logic(&token, "9003", json!({})).await, // panic
        host.logic(&token, "9005", json!({})).await, // invalid record
        host.logic(&token, "9007", json!({ "ms": 1000 })).await, // past the deadline
        host.logic(&token, "9017", json!({ "bytes": 10_000 })).await, // too large
        host.logic(&token, "9901", json!({ "player_id": victim_id }))
            .await, // no module
        host.logic(&token, "1103", json!({ "id": "no-such-good", "count": 1 }))
            .await, // refusal
        host.logic("forged-token", "1203", json!({})).await, // no session
        host.post_raw("/logic", "{not json", Some(&token)).await, // malformed
    ];
    // And a database that fails under the host.
    let db = rusqlite::Connection::open(host.dirs.data().join("game.db")).unwrap();
    db.execute_batch("DROP TABLE module_data").unwrap();
    failures.push(host.logic(&token, "1203", json!({})).await);
    for (_, reply) in &failures {
        assert_ne!(reply["ret"], 0, "each of these fails: {reply}");
        assert_clean(reply, &forbidden);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_reads_or_changes_another_players_record() {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let host = TestHost::start_in(dirs, |_| {}).await;
    let (victim_id, victim) = host.login("victim").await;
    host.ok(
        &victim,
        "1201",
        json!({ "name": "Victoria", "head_img": "v.png" }),
    )
    .await;
    host.ok(&victim, "1103", json!({ "id": "potion", "count": 2 }))
        .await;
    let before = host.ok(&victim, "1203", json!({})).await;

    let (attacker_id, attacker) = host.login("attacker").await;
    // Every command, its data naming the victim in every way a module might read it.
    let naming_victim = json!({
        "player_id": victim_id, "player": victim_id, "target": victim_id, "uid": victim_id,
        "account": "victim", "name": "Mallory", "head_img": "m.png",
        "gold": 1_000_000, "diamond": 1000, "items": { "potion": 99 },
        "id": "potion", "count": 1,
    });
    for cmd in ["1001", "1101", "1103", "1201", "1203"] {
        let (_, reply) = host.logic(&attacker, cmd, naming_victim.clone()).await;
        assert_clean(&reply, &["Victoria", "v.png"]);
        if let Some(id) = reply["data"]["player_id"].as_str() {
            assert_eq!(
                id, attacker_id,
                "{cmd} replies the caller's own record: {reply}"
            );
        }
    }
    assert_eq!(
        host.ok(&victim, "1203", json!({})).await,
        before,
        "the victim's record is untouched"
    );
    let own = host.ok(&attacker, "1203", json!({})).await;
    assert_eq!(own["player_id"], attacker_id.as_str());
    assert_eq!(
        own["name"], "Mallory",
        "the caller's own record took the change"
    );
    assert!(
        own["gold"].as_i64().unwrap() < 1_000_000,
        "gold is not taken from the request: {own}"
    );
}
