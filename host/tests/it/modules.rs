//! The demo modules as PROTOCOL.md's table says, one player's commands applied one at a time,
//! and a misbehaving module (`fixture-faulty`) failing alone: -5, -7, refusals that commit
//! nothing, private module data.

use crate::harness::{Dirs, TestHost, DAY_MS, DEMO_MODULES, NOON_MS};
use host::clock::ManualClock;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// A host with the demo modules and the faulty fixture, with `tweak` applied to its config.
pub async fn with_faulty(tweak: impl FnOnce(&mut host::Config)) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    dirs.install("fixture_faulty");
    TestHost::start_in(dirs, tweak).await
}

async fn gold(host: &TestHost, token: &str) -> i64 {
    host.ok(token, "1203", json!({})).await["gold"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_once_per_utc_day_with_a_streak() {
    let host = TestHost::start().await;
    let (_, token) = host.login("signer").await;
    assert_eq!(
        host.ok(&token, "1001", json!({})).await,
        json!({ "gold": 1100, "streak": 1 })
    );

    let (status, again) = host.logic(&token, "1001", json!({})).await;
    assert_eq!(
        (status, again["ret"].as_i64(), again["cmd"].as_str()),
        (200, Some(1), Some("1002"))
    );
    assert!(again["msg"].is_string());
    assert_eq!(gold(&host, &token).await, 1100, "a refusal changes nothing");

    host.clock.advance_millis(DAY_MS);
    assert_eq!(
        host.ok(&token, "1001", json!({})).await,
        json!({ "gold": 1200, "streak": 2 })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mall_lists_and_sells() {
    let host = TestHost::start().await;
    let (_, token) = host.login("shopper").await;
    let goods = host.ok(&token, "1101", json!({})).await["goods"]
        .as_array()
        .unwrap()
        .clone();
    assert!(goods.len() >= 3);
    assert!(goods
        .iter()
        .all(|g| g["id"].is_string() && g["name"].is_string() && g["price"].is_i64()));
    let shield = goods
        .iter()
        .find(|g| g["id"] == "shield")
        .expect("a shield is sold");
    let price = shield["price"].as_i64().unwrap();

    let bought = host
        .ok(&token, "1103", json!({ "id": "shield", "count": 2 }))
        .await;
    assert_eq!(
        bought,
        json!({ "gold": 1000 - 2 * price, "items": { "shield": 2 } })
    );
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(
        (record["gold"].as_i64(), &record["items"]),
        (Some(1000 - 2 * price), &json!({ "shield": 2 }))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mall_refusals_change_nothing() {
    let host = TestHost::start().await;
    let (_, token) = host.login("broke").await;
    let before = host.ok(&token, "1203", json!({})).await;
    for (data, code) in [
        (json!({ "id": "sword", "count": 4 }), 1),
        (json!({ "id": "dragon", "count": 1 }), 2),
        (json!({ "id": "potion", "count": 0 }), 3),
        (json!({ "id": "potion", "count": 100 }), 3),
        (json!({ "id": "potion", "count": "1" }), 3),
    ] {
        let (status, body) = host.logic(&token, "1103", data.clone()).await;
        assert_eq!(
            (status, body["ret"].as_i64()),
            (200, Some(code)),
            "{data}: {body}"
        );
        assert!(body["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(host.ok(&token, "1203", json!({})).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profile_updates_and_persists() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("renamer").await;
    let updated = host
        .ok(
            &token,
            "1201",
            json!({ "name": "Neo", "head_img": "https://img/neo.png" }),
        )
        .await;
    assert_eq!(
        updated,
        json!({ "player_id": player_id, "name": "Neo", "head_img": "https://img/neo.png",
                "gold": 1000, "diamond": 0, "items": {} })
    );
    assert_eq!(host.ok(&token, "1203", json!({})).await, updated);
    let (_, refused) = host.logic(&token, "1201", json!({ "name": 7 })).await;
    assert_eq!(refused["ret"], 1);
    assert_eq!(host.ok(&token, "1203", json!({})).await["name"], "Neo");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_purchases_of_one_player_conserve_gold_and_items() {
    let host = TestHost::start().await;
    let (_, token) = host.login("rush").await;
    let buys = (0..50).map(|_| host.logic(&token, "1103", json!({ "id": "potion", "count": 1 })));
    let replies = futures::future::join_all(buys).await;
    let succeeded = replies.iter().filter(|(_, body)| body["ret"] == 0).count();
    let refused = replies.iter().filter(|(_, body)| body["ret"] == 1).count();
    assert_eq!(
        (succeeded, refused),
        (20, 30),
        "1000 gold buys exactly 20 potions at 50"
    );
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(
        (record["gold"].as_i64(), record["items"]["potion"].as_i64()),
        (Some(0), Some(20))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn different_players_are_served_in_parallel() {
    let host = TestHost::start().await;
    let (_, a) = host.login("para-a").await;
    let (_, b) = host.login("para-b").await;
    let (reply_a, reply_b) = tokio::join!(
        host.logic(&a, "1103", json!({ "id": "sword", "count": 3 })),
        host.logic(&b, "1103", json!({ "id": "shield", "count": 5 })),
    );
    assert_eq!(reply_a.1["data"]["gold"], 100);
    assert_eq!(reply_b.1["data"]["gold"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_module_gets_minus_5_and_everything_keeps_serving() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("victim").await;
    for _ in 0..3 {
        let (status, body) = host.logic(&token, "9003", json!({})).await;
        assert_eq!(
            (status, body["ret"].as_i64(), body["cmd"].as_str()),
            (500, Some(-5), Some("9004")),
            "{body}"
        );
        let msg = body["msg"].as_str().unwrap();
        assert!(
            !msg.contains("boom") && !msg.contains(".rs"),
            "the panic stays in the log: {msg}"
        );
    }
    assert_eq!(
        host.ok(&token, "9001", json!({ "x": 1 })).await,
        json!({ "echo": { "x": 1 } })
    );
    assert_eq!(gold(&host, &token).await, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_record_from_a_module_is_refused_and_not_stored() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("negative").await;
    let (status, body) = host.logic(&token, "9005", json!({})).await;
    assert_eq!((status, body["ret"].as_i64()), (500, Some(-5)), "{body}");
    assert_eq!(gold(&host, &token).await, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_commits_nothing_the_module_changed() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("undo").await;
    let (status, body) = host.logic(&token, "9009", json!({})).await;
    assert_eq!((status, body["ret"].as_i64()), (200, Some(7)));
    assert_eq!(body["msg"], "refused after changing gold");
    assert_eq!(gold(&host, &token).await, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typed_request_that_does_not_fit_is_refused_with_the_declared_code_naming_the_field() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("typed").await;
    let (status, body) = host.logic(&token, "9019", json!({ "gold": "lots" })).await;
    assert_eq!((status, body["ret"].as_i64()), (200, Some(8)), "{body}");
    assert_eq!(body["cmd"], "9020", "{body}");
    let msg = body["msg"].as_str().unwrap();
    assert!(
        msg.contains("command 9019") && msg.contains("`gold`: invalid type: string"),
        "{msg}"
    );
    let (_, body) = host.logic(&token, "9019", json!({ "gift": 5 })).await;
    assert_eq!(body["ret"].as_i64(), Some(8), "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("unknown field `gift`"),
        "{body}"
    );
    assert_eq!(gold(&host, &token).await, 1000, "nothing given");

    // A request that fits reaches the handler as its type.
    assert_eq!(
        host.ok(&token, "9019", json!({ "gold": 5, "note": "thanks" }))
            .await,
        json!({ "gold": 1005, "note": "thanks" })
    );
    // The module lists the code it declared for requests that do not fit.
    let (_, modules) = host.admin(hyper::Method::GET, "/admin/modules", None).await;
    let faulty = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "faulty")
        .unwrap();
    assert_eq!(
        faulty["refusals"],
        json!([
            { "code": 7, "name": "refused_after_change" },
            { "code": 8, "name": "request_does_not_fit" },
        ])
    );
}

/// The messages of the log lines at warning level or above.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl slog::Drain for Warnings {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if record.level().is_at_least(slog::Level::Warning) {
            self.0.lock().unwrap().push(record.msg().to_string());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_with_an_undeclared_code_is_served_and_logged_once() {
    let dirs = Dirs::new();
    dirs.install("fixture_faulty");
    let warnings = Warnings::default();
    let log = slog::Logger::root(warnings.clone(), slog::o!());
    let clock = Arc::new(ManualClock::new(NOON_MS));
    let host = TestHost::start_logged(dirs, clock, log, |_| {}).await;
    let (_, token) = host.login("undeclared").await;
    let about_undeclared = || -> Vec<String> {
        let warnings = warnings.0.lock().unwrap();
        let about = warnings.iter().filter(|m| m.contains("does not declare"));
        about.cloned().collect()
    };
    // A declared code is not logged.
    let (status, body) = host.logic(&token, "9009", json!({})).await;
    assert_eq!((status, body["ret"].as_i64()), (200, Some(7)), "{body}");
    assert_eq!(about_undeclared(), Vec::<String>::new());
    // An undeclared one is served as it is, and logged the first time only.
    for _ in 0..3 {
        let (status, body) = host.logic(&token, "9021", json!({})).await;
        assert_eq!((status, body["ret"].as_i64()), (200, Some(9)), "{body}");
    }
    assert_eq!(about_undeclared().len(), 1, "{:?}", about_undeclared());
}

#[tokio::test(flavor = "multi_thread")]
async fn module_data_persists_and_stays_private_to_its_module() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("secretive").await;
    let (_, other) = host.login("neighbour").await;
    assert_eq!(
        host.ok(&token, "9011", json!({ "value": "s1" })).await,
        json!({ "module_data": {} })
    );
    assert_eq!(
        host.ok(&token, "9011", json!({ "value": "s2" })).await,
        json!({ "module_data": { "secret": "s1" } })
    );
    assert_eq!(
        host.ok(&other, "9011", json!({ "value": "n1" })).await,
        json!({ "module_data": {} }),
        "per player"
    );
    // Another module of the same player does not see it, and the shared record has no trace.
    host.ok(&token, "1001", json!({})).await;
    let record = host.ok(&token, "1203", json!({})).await;
    assert!(!record.to_string().contains("s2"), "{record}");
    assert_eq!(host.ok(&token, "9013", json!({})).await, record);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_module_gets_minus_7_and_the_host_keeps_serving() {
    let host = with_faulty(|config| config.plugins.call_timeout_ms = 300).await;
    let (_, token) = host.login("patient").await;
    let (status, body) = host.logic(&token, "9007", json!({ "ms": 1500 })).await;
    assert_eq!(
        (status, body["ret"].as_i64(), body["cmd"].as_str()),
        (504, Some(-7), Some("9008")),
        "{body}"
    );
    assert_eq!(
        host.ok(&token, "9007", json!({ "ms": 1 })).await,
        json!({ "slept": 1 })
    );
    assert_eq!(host.ok(&token, "1203", json!({})).await["gold"], 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_failure_gets_minus_6_without_detail() {
    let host = TestHost::start().await;
    let (_, token) = host.login("unlucky").await;
    let db = rusqlite::Connection::open(host.dirs.data().join("game.db")).unwrap();
    db.execute_batch("DROP TABLE module_data").unwrap();
    let (status, body) = host.logic(&token, "1203", json!({})).await;
    assert_eq!((status, body["ret"].as_i64()), (503, Some(-6)), "{body}");
    let msg = body["msg"].as_str().unwrap();
    assert!(
        !msg.contains("module_data") && !msg.contains("SQL"),
        "no database detail: {msg}"
    );
    assert_eq!(
        host.get("/health").await.0,
        200,
        "the host itself keeps running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_in_the_data_reach_the_module_exactly() {
    let host = with_faulty(|_| {}).await;
    let (_, token) = host.login("precise").await;
    // Doubles of every magnitude, many of which the fast (not round-trip) float parser
    // reads one unit in the last place off.
    let numbers: Vec<f64> = (1..200u32)
        .map(|n| f64::from(n) * 4.927_439_851_301_7 + 1.0 / f64::from(n + 2))
        .chain([
            0.1,
            1e-7,
            123_456_789.123_456_78,
            f64::MAX,
            f64::MIN_POSITIVE,
        ])
        .collect();
    let echoed = host.ok(&token, "9001", json!({ "numbers": numbers })).await;
    let back: Vec<f64> = serde_json::from_value(echoed["echo"]["numbers"].clone()).unwrap();
    let off: Vec<(f64, f64)> = numbers
        .iter()
        .zip(&back)
        .filter(|(sent, got)| sent.to_bits() != got.to_bits())
        .map(|(s, g)| (*s, *g))
        .collect();
    assert!(
        off.is_empty(),
        "{} of {} numbers changed: {off:?}",
        off.len(),
        numbers.len()
    );
}
