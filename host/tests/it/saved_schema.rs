//! Saved data that changes shape across a hot swap: module `tally` at saved-data schema 1
//! (`{"count": n}`, fixture `tally-1`) is swapped for its version at schema 2 (`{"total": n,
//! "since_upgrade": m}`, fixture `tally-2`, with its migration) while a player bumps their tally
//! as fast as the host answers. Every bump answers 0 and counts once, across the swap; data
//! saved under schema 1 is upgraded when read. A rollback to schema 1 cannot read what schema 2
//! wrote (downgrading on rollback is still to come): its commands fail (-5) and change nothing. On SQLite, PostgreSQL and MariaDB (the store keeps the schema in the data itself).
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::databases::ScratchDb;
use crate::harness::{library, Dirs, TestHost};
use hyper::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_swap_to_a_new_schema_under_load_upgrades_saved_data_and_loses_no_bump,
);

const TALLY: &str = "libtally.so";

/// Installs build `schema` of module `tally` the way a designer ships it (a rename).
fn ship(plugins: &std::path::Path, schema: u32) {
    let temp = plugins.join(".libtally.so.partial");
    std::fs::copy(library(&format!("fixture_tally_{schema}")), &temp).unwrap();
    std::fs::rename(&temp, plugins.join(TALLY)).unwrap();
}

/// The reply data of 9403 (the tally, read only), or the whole reply when it failed.
async fn peek(host: &TestHost, token: &str) -> Result<Value, Value> {
    let (_, body) = host.logic(token, "9403", json!({})).await;
    match body["ret"].as_i64() {
        Some(0) => Ok(body["data"].clone()),
        _ => Err(body),
    }
}

/// Waits until 9403 answers from saved-data schema `schema`.
async fn wait_for_schema(host: &TestHost, token: &str, schema: u32) {
    let start = Instant::now();
    loop {
        let (_, modules) = host.admin(Method::GET, "/admin/modules", None).await;
        let serving = modules["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "tally" && m["schema"] == schema);
        if serving {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "schema {schema} never served; last 9403: {:?}",
            peek(host, token).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_swap_to_a_new_schema_under_load_upgrades_saved_data_and_loses_no_bump(db: ScratchDb) {
    let dirs = Dirs::new();
    ship(&dirs.plugins(), 1);
    let url = db.url.clone();
    let host = Arc::new(
        TestHost::start_in(dirs, move |config| {
            config.store.url = url;
            config.plugins.debounce_ms = 50;
        })
        .await,
    );
    let (early_id, early) = host.login("early").await;
    for _ in 0..3 {
        host.ok(&early, "9401", json!({})).await;
    }
    let (_, reader) = host.login("reader").await;
    host.ok(&reader, "9401", json!({})).await;
    assert_eq!(
        peek(&host, &early).await.unwrap(),
        json!({ "schema": 1, "total": 3 })
    );

    // A player bumps without pause while schema 2 lands.
    let (busy_id, busy) = host.login("busy").await;
    let stop = Arc::new(AtomicBool::new(false));
    let bumps = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn({
        let (host, busy, stop, bumps) = (host.clone(), busy.clone(), stop.clone(), bumps.clone());
        async move {
            let mut seen_schema_2 = 0;
            let give_up = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) || seen_schema_2 < 3 {
                assert!(Instant::now() < give_up, "schema 2 never answered the load");
                let reply = host.ok(&busy, "9401", json!({})).await;
                let n = bumps.fetch_add(1, Ordering::Relaxed) + 1;
                assert_eq!(reply["total"], n, "every bump counts once: {reply}");
                if reply["schema"] == 2 {
                    seen_schema_2 += 1;
                    assert_eq!(reply["since_upgrade"], seen_schema_2, "{reply}");
                }
            }
        }
    });
    while bumps.load(Ordering::Relaxed) < 20 {
        assert!(!load.is_finished(), "the load ended before the swap");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ship(&host.dirs.plugins(), 2);
    wait_for_schema(&host, &early, 2).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(90), load)
        .await
        .expect("the load ends")
        .unwrap();

    // Saved under schema 1 and not touched since: upgraded on read, stored as schema 2 on the
    // next write.
    assert_eq!(
        peek(&host, &early).await.unwrap(),
        json!({ "schema": 2, "total": 3 })
    );
    assert_eq!(
        host.ok(&early, "9401", json!({})).await,
        json!({ "schema": 2, "total": 4, "since_upgrade": 1 })
    );
    // Only read under schema 2: still stored at schema 1.
    assert_eq!(
        peek(&host, &reader).await.unwrap(),
        json!({ "schema": 2, "total": 1 })
    );
    // A player new under schema 2.
    let (_, late) = host.login("late").await;
    assert_eq!(
        host.ok(&late, "9401", json!({})).await,
        json!({ "schema": 2, "total": 1, "since_upgrade": 1 })
    );

    // Rolled back to schema 1: data written by schema 2 cannot be read, and nothing changes.
    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/tally/rollback", None)
        .await;
    assert_eq!(rolled["ret"], 0, "{rolled}");
    wait_for_schema(&host, &early, 1).await;
    let (status, failed) = host.logic(&early, "9401", json!({})).await;
    assert_eq!(
        (status, failed["ret"].as_i64()),
        (500, Some(-5)),
        "{failed}"
    );
    // A player whose data schema 2 only read is served as before.
    assert_eq!(
        host.ok(&reader, "9401", json!({})).await,
        json!({ "schema": 1, "total": 2 })
    );
    // What the store holds, as the operator console shows it: every bump, stamped with the
    // schema that wrote it, and not the early player's failed one.
    let saved = |shown: &Value| shown["player"]["modules"]["tally"].clone();
    let (_, shown) = host
        .admin(Method::GET, &format!("/admin/players/{early_id}"), None)
        .await;
    assert_eq!(
        saved(&shown),
        json!({ "total": 4, "since_upgrade": 1, "$schema": 2 })
    );
    let (_, shown) = host
        .admin(Method::GET, &format!("/admin/players/{busy_id}"), None)
        .await;
    let busy = saved(&shown);
    assert_eq!(
        (&busy["total"], &busy["$schema"]),
        (&json!(bumps.load(Ordering::Relaxed)), &json!(2)),
        "{busy}"
    );
}
