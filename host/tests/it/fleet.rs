//! Several hosts on one server database: what a player sees must not depend on the host that
//! serves them. Two in-process hosts share a scratch database on PostgreSQL, then on MariaDB
//! (`tests_on!` makes one test per case and backend; see `databases.rs` for the servers).

use crate::databases::ScratchDb;
use crate::harness::{library, Dirs, TestHost, DEMO_MODULES};
use serde_json::json;
use std::time::Duration;

tests_on!(
    [postgres: Postgres, mysql: MySql]
    a_player_logs_in_on_one_host_and_plays_on_the_other,
    purchases_split_across_two_hosts_conserve_gold_and_items,
    a_reload_on_one_host_changes_nothing_on_the_other,
    a_turn_overtaken_by_another_host_runs_again_on_what_it_wrote,
);

/// A host with the demo modules on `db`, named `host_id`.
pub async fn host_on(db: &ScratchDb, host_id: &str) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    start_on(db, host_id, dirs).await
}

/// A host serving the modules in `dirs` on `db`, named `host_id`.
async fn start_on(db: &ScratchDb, host_id: &str, dirs: Dirs) -> TestHost {
    let url = db.url.clone();
    let host_id = host_id.to_owned();
    TestHost::start_in(dirs, move |config| {
        config.store.url = url;
        config.server.host_id = host_id;
    })
    .await
}

async fn a_player_logs_in_on_one_host_and_plays_on_the_other(db: ScratchDb) {
    let (a, b) = (host_on(&db, "a").await, host_on(&db, "b").await);
    let (player_id, token) = a.login("alice").await;
    let on_b = b.ok(&token, "1203", json!({})).await;
    assert_eq!(on_b["player_id"], player_id.as_str(), "{on_b}");
    // The same account logs in to the same player on either host.
    assert_eq!(b.login("alice").await.0, player_id);

    // Both hosts have the session cached now; a logout on B holds on A at its next command.
    a.ok(&token, "1203", json!({})).await;
    let (status, _) = b.post("/logout", &json!({}), Some(&token)).await;
    assert_eq!(status, 200);
    let (status, refused) = a.logic(&token, "1203", json!({})).await;
    assert_eq!(
        (status, refused["ret"].as_i64()),
        (401, Some(-3)),
        "{refused}"
    );
    let (status, _) = b.logic(&token, "1203", json!({})).await;
    assert_eq!(status, 401);
    let (_, modules) = a.admin(reqwest::Method::GET, "/admin/modules", None).await;
    assert_eq!(modules["host_id"], "a");
}

async fn purchases_split_across_two_hosts_conserve_gold_and_items(db: ScratchDb) {
    let hosts = [host_on(&db, "a").await, host_on(&db, "b").await];
    let (_, token) = hosts[0].login("buyer").await;
    let start = hosts[1].ok(&token, "1203", json!({})).await;
    let gold = start["gold"].as_i64().unwrap();
    // 200 purchases of one potion (50 gold) at once, half on each host: the player can afford
    // gold / 50 of them. Turns that overlapped would sell more than that.
    let mut replies = Vec::new();
    let buys = (0..200).map(|i| {
        let host = &hosts[i % 2];
        let token = token.clone();
        async move {
            host.logic(&token, "1103", json!({ "id": "potion", "count": 1 }))
                .await
        }
    });
    for reply in futures::future::join_all(buys).await {
        replies.push(reply);
    }
    let bought = replies.iter().filter(|(_, r)| r["ret"] == 0).count() as i64;
    let refused = replies
        .iter()
        .filter(|(_, r)| r["ret"].as_i64().is_some_and(|ret| ret > 0))
        .count() as i64;
    assert_eq!(
        bought + refused,
        200,
        "only sales and refusals: {replies:?}"
    );
    assert_eq!(bought, gold / 50, "exactly what the gold pays for");
    for host in &hosts {
        let end = host.ok(&token, "1203", json!({})).await;
        assert_eq!(end["gold"].as_i64().unwrap(), gold - 50 * bought, "{end}");
        assert_eq!(end["items"]["potion"].as_i64().unwrap(), bought, "{end}");
    }
}

async fn a_reload_on_one_host_changes_nothing_on_the_other(db: ScratchDb) {
    let (a, b) = (host_on(&db, "a").await, host_on(&db, "b").await);
    let (_, token) = a.login("shopper").await;
    // Host A gets the sale build of the mall (half price); B keeps the shipped one.
    let sale = a.dirs.plugins().join(".libmall.so.tmp");
    std::fs::copy(library("fixture_mall_sale"), &sale).unwrap();
    std::fs::rename(&sale, a.dirs.plugins().join("libmall.so")).unwrap();
    let (_, reloaded) = a
        .admin(reqwest::Method::POST, "/admin/modules/mall/reload", None)
        .await;
    assert!(
        ["swapped", "unchanged"].contains(&reloaded["change"].as_str().unwrap_or("")),
        "{reloaded}"
    );
    let gold = |reply: serde_json::Value| reply["gold"].as_i64().unwrap();
    let before = gold(b.ok(&token, "1203", json!({})).await);
    let buy = json!({ "id": "potion", "count": 1 });
    let after_a = gold(a.ok(&token, "1103", buy.clone()).await);
    assert_eq!(before - after_a, 25, "A sells at the sale price");
    let after_b = gold(b.ok(&token, "1103", buy).await);
    assert_eq!(after_a - after_b, 50, "B still sells at the shipped price");
    let (_, modules) = b.admin(reqwest::Method::GET, "/admin/modules", None).await;
    assert_eq!(
        modules["modules"].as_array().unwrap().len(),
        DEMO_MODULES.len()
    );
    assert!(
        modules.to_string().contains("\"version\":\"0.1.0\""),
        "B still serves the shipped mall: {modules}"
    );
}

/// A host with the fixture `prices` (a sword at 30 gold) on `db`, named `host_id`.
async fn prices_host_on(db: &ScratchDb, host_id: &str) -> TestHost {
    let dirs = Dirs::new();
    std::fs::copy(
        library("fixture_prices"),
        dirs.plugins().join("libprices.so"),
    )
    .unwrap();
    let tables = dirs.plugins().join("prices.tables");
    std::fs::create_dir_all(&tables).unwrap();
    std::fs::write(tables.join("goods.csv"), "id,price\nsword,30\n").unwrap();
    start_on(db, host_id, dirs).await
}

/// The value of the counter `name` in a host's `/metrics`.
async fn counter(host: &TestHost, name: &str) -> u64 {
    let text = host.metrics().await;
    let line = text
        .lines()
        .find(|line| line.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn a_turn_overtaken_by_another_host_runs_again_on_what_it_wrote(db: ScratchDb) {
    let (a, b) = (
        prices_host_on(&db, "a").await,
        prices_host_on(&db, "b").await,
    );
    let (_, token) = a.login("knight").await;
    let quote = b.ok(&token, "9301", json!({ "id": "sword" })).await;
    assert_eq!(quote["price"], 30);
    let start = a.ok(&token, "9303", json!({ "id": "sword" })).await["gold"]
        .as_i64()
        .unwrap()
        + 30;
    // Host A's purchase reads the player, then waits 600 ms in the module; meanwhile host B
    // sells a sword to the same player. A's write finds the player changed, applies nothing,
    // and A runs the purchase again on what B wrote: three swords paid, none twice.
    let slow = a.logic(&token, "9307", json!({ "id": "sword", "ms": 600 }));
    let quick = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.ok(&token, "9303", json!({ "id": "sword" })).await
    };
    let ((_, slow), quick) = tokio::join!(slow, quick);
    assert_eq!(slow["ret"], 0, "{slow}");
    assert_eq!(quick["gold"].as_i64().unwrap(), start - 60, "{quick}");
    assert_eq!(slow["data"]["gold"].as_i64().unwrap(), start - 90, "{slow}");
    assert_eq!(counter(&a, "game_host_turn_conflicts_total").await, 1);
    assert_eq!(counter(&b, "game_host_turn_conflicts_total").await, 0);
    // Host B's two commands read in batches (of one each: nothing else was waiting).
    let read = "game_host_store_batched_turns_total{host=\"b\",kind=\"read\"}";
    assert!(counter(&b, read).await >= 2);
}
