//! The admin API: what runs, reload and rollback on demand, events, and its bearer token.

use crate::harness::{library, Dirs, TestHost, DEMO_MODULES};
use reqwest::Method;
use serde_json::json;

/// The demo modules and build "a" of `swap`, with the watcher off: only the admin API reloads.
async fn host_without_watcher(token: Option<&str>) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    std::fs::copy(library("fixture_swap_a"), dirs.plugins().join("libswap.so")).unwrap();
    TestHost::start_in(dirs, |config| {
        config.plugins.watch = false;
        config.admin.token = token.map(str::to_owned);
    })
    .await
}

fn put_build(host: &TestHost, build: &str) {
    let temp = host.dirs.plugins().join(".next");
    std::fs::copy(library(&format!("fixture_swap_{build}")), &temp).unwrap();
    std::fs::rename(temp, host.dirs.plugins().join("libswap.so")).unwrap();
}

async fn which(host: &TestHost, token: &str) -> String {
    host.ok(token, "9501", json!({})).await["build"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn modules_lists_what_serves_with_its_numbers() {
    let host = host_without_watcher(None).await;
    let (_, token) = host.login("ops").await;
    host.ok(&token, "1101", json!({})).await;
    host.logic(&token, "1103", json!({ "id": "nothing", "count": 1 }))
        .await;
    let (status, body) = host.admin(Method::GET, "/admin/modules", None).await;
    assert_eq!((status, body["ret"].as_i64()), (200, Some(0)), "{body}");
    let modules = body["modules"].as_array().unwrap();
    let names: Vec<&str> = modules
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["activity", "mall", "player", "social", "swap"]);
    let mall = &modules[1];
    assert_eq!(
        (mall["prefix"].as_str(), mall["version"].as_str()),
        (Some("11"), Some("0.1.0"))
    );
    assert_eq!(mall["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        (
            mall["generation"].as_u64(),
            mall["calls"].as_u64(),
            mall["in_flight"].as_u64()
        ),
        (Some(1), Some(2), Some(0))
    );
    assert_eq!(mall["commands"], json!(["1101", "1103"]));
    assert_eq!(
        mall["refusals"],
        json!([
            { "code": 1, "name": "not_enough_gold" },
            { "code": 2, "name": "no_such_good" },
            { "code": 3, "name": "bad_count" },
        ])
    );
    assert!(mall["loaded_at_ms"].as_u64().unwrap() > 0);
    assert_eq!(mall["previous"], json!([]));
    assert_eq!(
        (body["draining"].clone(), body["not_unloaded"].clone()),
        (json!([]), json!([]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_and_rollback_on_demand() {
    let host = host_without_watcher(None).await;
    let (_, token) = host.login("ops").await;
    put_build(&host, "b");
    assert_eq!(
        which(&host, &token).await,
        "a",
        "nothing reloads without the watcher"
    );

    let (status, body) = host
        .admin(Method::POST, "/admin/modules/swap/reload", None)
        .await;
    assert_eq!(
        (status, body["ret"].as_i64(), body["change"].as_str()),
        (200, Some(0), Some("swapped")),
        "{body}"
    );
    assert_eq!(body["generation"], 2);
    assert_eq!(which(&host, &token).await, "b");
    let (_, again) = host
        .admin(Method::POST, "/admin/modules/swap/reload", None)
        .await;
    assert_eq!(again["change"], "unchanged");

    let (_, listed) = host.admin(Method::GET, "/admin/modules", None).await;
    let swap = listed["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "swap")
        .unwrap()
        .clone();
    assert_eq!(swap["previous"].as_array().unwrap().len(), 1, "{swap}");

    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/swap/rollback", None)
        .await;
    assert_eq!(
        (rolled["ret"].as_i64(), rolled["change"].as_str()),
        (Some(0), Some("swapped")),
        "{rolled}"
    );
    assert_eq!(which(&host, &token).await, "a");
    let (_, nothing_left) = host
        .admin(Method::POST, "/admin/modules/swap/rollback", None)
        .await;
    assert_eq!(nothing_left["ret"], 1);
    assert!(
        nothing_left["msg"]
            .as_str()
            .unwrap()
            .contains("no previous version"),
        "{nothing_left}"
    );

    let (_, events) = host.admin(Method::GET, "/admin/events", None).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["module"] == "swap")
        .map(|e| e["kind"].as_str().unwrap())
        // Retirements land whenever the drained version's last call returns.
        .filter(|kind| *kind != "retire")
        .collect();
    assert_eq!(
        kinds,
        ["load", "swap", "drain", "rollback", "drain"],
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_reload_says_why_and_the_old_version_serves() {
    let host = host_without_watcher(None).await;
    let (_, token) = host.login("ops").await;
    std::fs::write(host.dirs.plugins().join("libswap.so"), b"broken upload").unwrap();
    let (status, body) = host
        .admin(Method::POST, "/admin/modules/swap/reload", None)
        .await;
    assert_eq!(
        (status, body["ret"].as_i64(), body["change"].as_str()),
        (200, Some(1), Some("refused"))
    );
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("not a loadable library"),
        "{body}"
    );
    assert_eq!(which(&host, &token).await, "a");
    let (_, events) = host.admin(Method::GET, "/admin/events", None).await;
    let refusal = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refuse")
        .unwrap()
        .clone();
    assert!(
        refusal["file"].as_str().unwrap().ends_with("libswap.so"),
        "{refusal}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_modules_and_paths_get_404() {
    let host = host_without_watcher(None).await;
    let (status, body) = host
        .admin(Method::POST, "/admin/modules/ghost/reload", None)
        .await;
    assert_eq!((status, body["ret"].as_i64()), (404, Some(-1)));
    assert!(body["msg"].as_str().unwrap().contains("`ghost`"));
    assert_eq!(host.admin(Method::GET, "/admin/nothing", None).await.0, 404);
    assert_eq!(
        host.admin(Method::GET, "/admin/modules/swap/reload", None)
            .await
            .0,
        405
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_token_is_required() {
    let host = host_without_watcher(Some("s3cret")).await;
    let (status, body) = host.admin(Method::GET, "/admin/modules", None).await;
    assert_eq!((status, body["ret"].as_i64()), (401, Some(-3)));
    assert_eq!(
        host.admin(Method::GET, "/admin/modules", Some("wrong"))
            .await
            .0,
        401
    );
    assert_eq!(
        host.admin(Method::GET, "/admin/modules", Some("s3cret"))
            .await
            .0,
        200
    );
}
