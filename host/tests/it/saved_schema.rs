//! Saved data that changes shape across a hot swap: module `tally` at saved-data schema 1
//! (`{"count": n}`, fixture `tally-1`) is swapped for its version at schema 2 (`{"total": n,
//! "since_upgrade": m}`, fixture `tally-2`, whose migration refuses a count over a million)
//! while a player bumps their tally as fast as the host answers, then rolled back, still under
//! that load. Every bump answers 0 and counts once, across both swaps; data saved under schema
//! 1 is upgraded when read; after the rollback, schema 2 stays loaded as the migrator and what
//! it wrote is downgraded for schema 1. Before each swap the stored data is checked both ways:
//! one player whose data the migration refuses keeps schema 2 out, says who, and leaves schema
//! 1 serving, as does a step past its deadline; `game-host check --database-url` runs the same
//! check. On SQLite, PostgreSQL and MariaDB (the store keeps the schema in the data itself).
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::databases::ScratchDb;
use crate::harness::{binary, library, Dirs, TestHost, CONFIG_DIR};
use hyper::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_swap_to_a_new_schema_and_back_under_load_migrates_saved_data_and_loses_no_bump,
    a_migration_that_fails_on_one_stored_player_keeps_the_new_schema_out,
    check_runs_the_swap_check_over_a_database_given_to_it,
    a_step_back_rewrites_newer_data_so_that_a_restart_needs_no_migrator,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_cap_a_random_sample_of_players_is_checked() {
    crate::databases::with_db(crate::databases::Backend::Sqlite, sampled_above_the_cap).await
}

const TALLY: &str = "libtally.so";

/// Installs build `schema` of module `tally` the way a designer ships it (a rename).
fn ship(plugins: &std::path::Path, schema: u32) {
    let temp = plugins.join(".libtally.so.partial");
    std::fs::copy(library(&format!("fixture_tally_{schema}")), &temp).unwrap();
    std::fs::rename(&temp, plugins.join(TALLY)).unwrap();
}

/// A host serving `tally` at schema 1 on `db`, with `tweak` applied to its config.
async fn host_on(db: &ScratchDb, tweak: impl FnOnce(&mut host::config::Config)) -> Arc<TestHost> {
    let dirs = Dirs::new();
    ship(&dirs.plugins(), 1);
    let url = db.url.clone();
    Arc::new(
        TestHost::start_in(dirs, move |config| {
            config.store.url = url;
            config.plugins.debounce_ms = 50;
            tweak(config);
        })
        .await,
    )
}

/// The reply data of 9403 (the tally, read only), or the whole reply when it failed.
async fn peek(host: &TestHost, token: &str) -> Result<Value, Value> {
    let (_, body) = host.logic(token, "9403", json!({})).await;
    match body["ret"].as_i64() {
        Some(0) => Ok(body["data"].clone()),
        _ => Err(body),
    }
}

/// `GET /admin/modules`.
async fn modules(host: &TestHost) -> Value {
    host.admin(Method::GET, "/admin/modules", None).await.1
}

/// The module `tally` as `/admin/modules` shows it.
async fn tally(host: &TestHost) -> Value {
    modules(host).await["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tally")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until `/admin/modules` says `tally` serves saved-data schema `schema`.
async fn wait_for_schema(host: &TestHost, token: &str, schema: u32) {
    let start = Instant::now();
    while tally(host).await["schema"] != schema {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "schema {schema} never served; last 9403: {:?}",
            peek(host, token).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the last saved-data check of `tally` has ended, and returns its report.
async fn finished_check(host: &TestHost) -> Value {
    let start = Instant::now();
    loop {
        let modules = modules(host).await;
        let report = modules["data_checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == "tally" && r["state"] != "running")
            .cloned();
        if let Some(report) = report {
            return report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no check of tally ended: {modules}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The module data `tally` has stored for `player_id`, as the operator console shows it.
async fn stored(host: &TestHost, player_id: &str) -> Value {
    let (_, shown) = host
        .admin(Method::GET, &format!("/admin/players/{player_id}"), None)
        .await;
    shown["player"]["modules"]["tally"].clone()
}

/// A player bumping without pause until told to stop; each reply must count exactly the
/// bumps so far. It stops only once `schema` has answered three times.
struct Load {
    stop: Arc<AtomicBool>,
    bumps: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(host: &Arc<TestHost>, token: &str, bumps_before: u64, schema: u32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let bumps = Arc::new(AtomicU64::new(bumps_before));
        let task = tokio::spawn({
            let (host, token, stop, bumps) =
                (host.clone(), token.to_owned(), stop.clone(), bumps.clone());
            async move {
                let mut seen = 0;
                let give_up = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) || seen < 3 {
                    assert!(Instant::now() < give_up, "schema {schema} never answered");
                    let reply = host.ok(&token, "9401", json!({})).await;
                    let n = bumps.fetch_add(1, Ordering::Relaxed) + 1;
                    assert_eq!(reply["total"], n, "every bump counts once: {reply}");
                    if reply["schema"] == schema {
                        seen += 1;
                    }
                }
            }
        });
        Load { stop, bumps, task }
    }

    /// Waits until `more` bumps have been answered.
    async fn running(&self, more: u64) {
        let until = self.bumps.load(Ordering::Relaxed) + more;
        while self.bumps.load(Ordering::Relaxed) < until {
            assert!(!self.task.is_finished(), "the load ended early");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the load once its schema has answered; returns the bumps counted in all.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(90), self.task)
            .await
            .expect("the load ends")
            .unwrap();
        self.bumps.load(Ordering::Relaxed)
    }
}

async fn a_swap_to_a_new_schema_and_back_under_load_migrates_saved_data_and_loses_no_bump(
    db: ScratchDb,
) {
    let host = host_on(&db, |_| {}).await;
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
    let load = Load::start(&host, &busy, 0, 2);
    load.running(20).await;
    ship(&host.dirs.plugins(), 2);
    wait_for_schema(&host, &early, 2).await;
    let bumps = load.stop().await;
    let check = finished_check(&host).await;
    assert_eq!(
        (&check["state"], &check["from_schema"], &check["to_schema"]),
        (&json!("passed"), &json!(1), &json!(2)),
        "{check}"
    );
    assert_eq!(check["checked"], 3, "early, reader and busy: {check}");
    assert_eq!(stored(&host, &busy_id).await["$schema"], 2);

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
    assert_eq!(
        stored(&host, &early_id).await,
        json!({ "total": 4, "since_upgrade": 1, "$schema": 2 })
    );
    // Only read under schema 2: still stored at schema 1.
    assert_eq!(
        peek(&host, &reader).await.unwrap(),
        json!({ "schema": 2, "total": 1 })
    );
    // A player new under schema 2.
    let (late_id, late) = host.login("late").await;
    assert_eq!(
        host.ok(&late, "9401", json!({})).await,
        json!({ "schema": 2, "total": 1, "since_upgrade": 1 })
    );

    // Rolled back to schema 1 while the busy player goes on: schema 2 stays loaded as the
    // migrator, and the data it wrote is downgraded for schema 1 when read.
    let load = Load::start(&host, &busy, bumps, 1);
    load.running(20).await;
    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/tally/rollback", None)
        .await;
    assert_eq!(rolled["ret"], 0, "{rolled}");
    wait_for_schema(&host, &early, 1).await;
    let bumps = load.stop().await;
    let check = finished_check(&host).await;
    assert_eq!(
        (&check["state"], &check["from_schema"], &check["to_schema"]),
        (&json!("passed"), &json!(2), &json!(1)),
        "{check}"
    );
    assert_eq!(check["checked"], 4, "{check}");
    let shown = tally(&host).await;
    assert_eq!(
        (&shown["version"], &shown["migrator"]["schema"]),
        (&json!("1.0.0"), &json!(2)),
        "{shown}"
    );
    assert!(
        shown["migrator"]["calls"].as_u64().unwrap() > 0,
        "the busy player's first bump after the swap went through it: {shown}"
    );
    // Every bump the busy player made, through both swaps, stored at schema 1.
    assert_eq!(stored(&host, &busy_id).await, json!({ "count": bumps }));
    assert_eq!(
        host.ok(&early, "9401", json!({})).await,
        json!({ "schema": 1, "total": 5 })
    );
    assert_eq!(stored(&host, &early_id).await, json!({ "count": 5 }));
    // Read only, yet stored downgraded: the next read needs no migrator.
    assert_eq!(
        peek(&host, &late).await.unwrap(),
        json!({ "schema": 1, "total": 1 })
    );
    assert_eq!(stored(&host, &late_id).await, json!({ "count": 1 }));
    assert_eq!(
        host.ok(&reader, "9401", json!({})).await,
        json!({ "schema": 1, "total": 2 })
    );

    // Schema 2 again (the file still holds it: the rollback keeps it out until the file
    // changes or an operator reloads it): the migrator is no longer needed, and retires.
    let (_, reloaded) = host
        .admin(Method::POST, "/admin/modules/tally/reload", None)
        .await;
    assert_eq!(reloaded["change"], "swapped", "{reloaded}");
    assert_eq!(tally(&host).await["migrator"], Value::Null);
    assert_eq!(
        peek(&host, &early).await.unwrap(),
        json!({ "schema": 2, "total": 5 })
    );
}

async fn a_migration_that_fails_on_one_stored_player_keeps_the_new_schema_out(db: ScratchDb) {
    let host = host_on(&db, |_| {}).await;
    for account in ["a", "b"] {
        let (_, token) = host.login(account).await;
        host.ok(&token, "9401", json!({})).await;
    }
    let (huge_id, huge) = host.login("huge").await;
    host.ok(&huge, "9405", json!({ "count": 2_000_000 })).await;

    ship(&host.dirs.plugins(), 2);
    let check = finished_check(&host).await;
    assert_eq!(
        (&check["state"], &check["checked"], &check["failed"]),
        (&json!("failed"), &json!(3), &json!(1)),
        "{check}"
    );
    assert_eq!(check["first_failure"]["player_id"], huge_id, "{check}");
    let reason = check["first_failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("a count of 2000000 is over 1000000"),
        "{reason}"
    );
    // The refusal names the count and the player, and schema 1 serves on.
    let msg = host.event_message("refuse").await;
    for part in ["1 of 3 players", huge_id.as_str(), "what serves stays"] {
        assert!(msg.contains(part), "`{part}` missing: {msg}");
    }
    assert_eq!(tally(&host).await["schema"], 1);
    assert_eq!(
        peek(&host, &huge).await.unwrap(),
        json!({ "schema": 1, "total": 2_000_000 })
    );

    // Once the data is fixed, a reload lets schema 2 in: a refusal for the stored data is not
    // remembered against the library's bytes.
    host.ok(&huge, "9405", json!({ "count": 7 })).await;
    let (_, reloaded) = host
        .admin(Method::POST, "/admin/modules/tally/reload", None)
        .await;
    assert_eq!(reloaded["change"], "swapped", "{reloaded}");
    assert_eq!(
        peek(&host, &huge).await.unwrap(),
        json!({ "schema": 2, "total": 7 })
    );
}

async fn a_step_back_rewrites_newer_data_so_that_a_restart_needs_no_migrator(db: ScratchDb) {
    let host = host_on(&db, |_| {}).await;
    let mut players = Vec::new();
    for n in 0..5 {
        let (id, token) = host.login(&format!("p{n}")).await;
        host.ok(&token, "9401", json!({})).await;
        players.push((id, token));
    }
    ship(&host.dirs.plugins(), 2);
    wait_for_schema(&host, &players[0].1, 2).await;
    for (id, token) in &players {
        host.ok(token, "9401", json!({})).await;
        assert_eq!(stored(&host, id).await["$schema"], 2);
    }

    // The older library shipped again: a step back, and schema 2's data is rewritten.
    ship(&host.dirs.plugins(), 1);
    wait_for_schema(&host, &players[0].1, 1).await;
    let message = host.event_message("rewrite").await;
    assert!(
        message.contains("rewritten at schema 1 for 5 of 5 players"),
        "{message}"
    );
    for (id, _) in &players {
        assert_eq!(
            stored(&host, id).await,
            json!({ "count": 2 }),
            "player {id}"
        );
    }

    // A restart: the migrator is gone, and every player is served.
    let host = Arc::into_inner(host).expect("no other handle");
    let (dirs, _) = host.stop().await;
    let url = db.url.clone();
    let host = TestHost::start_in(dirs, move |config| config.store.url = url).await;
    assert_eq!(tally(&host).await["migrator"], Value::Null);
    for (_, token) in &players {
        assert_eq!(
            host.ok(token, "9401", json!({})).await,
            json!({ "schema": 1, "total": 3 })
        );
    }
}

/// `game-host check --database-url URL FILE`: its exit status and stdout.
fn check_against(db: &ScratchDb, schema: u32) -> (bool, String) {
    let output = std::process::Command::new(binary())
        .args([
            "check",
            "--config-dir",
            CONFIG_DIR,
            "--database-url",
            &db.url,
        ])
        .arg(library(&format!("fixture_tally_{schema}")))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

async fn check_runs_the_swap_check_over_a_database_given_to_it(db: ScratchDb) {
    let host = host_on(&db, |_| {}).await;
    let (_, a) = host.login("a").await;
    host.ok(&a, "9401", json!({})).await;
    let (huge_id, huge) = host.login("huge").await;
    host.ok(&huge, "9405", json!({ "count": 2_000_000 })).await;
    // One host at a time on a SQLite file.
    let host = Arc::into_inner(host).expect("no other handle");
    let dirs = host.stop().await.0;

    let (ok, stdout) = check_against(&db, 2);
    assert!(!ok, "{stdout}");
    for part in ["refused:", "1 of 2 players", &huge_id, "over 1000000"] {
        assert!(stdout.contains(part), "`{part}` missing: {stdout}");
    }
    let (ok, stdout) = check_against(&db, 1);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("stored saved data: 2 players checked up to schema 1 and back"),
        "{stdout}"
    );

    let host = TestHost::start_in(dirs, {
        let url = db.url.clone();
        move |config| config.store.url = url
    })
    .await;
    host.ok(&huge, "9405", json!({ "count": 3 })).await;
    host.stop().await;
    let (ok, stdout) = check_against(&db, 2);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("stored saved data: 2 players checked up to schema 2 and back"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_step_past_the_deadline_ends_the_check_and_keeps_the_new_schema_out() {
    crate::databases::with_db(crate::databases::Backend::Sqlite, slow_step).await
}

async fn slow_step(db: ScratchDb) {
    let host = host_on(&db, |config| config.plugins.call_timeout_ms = 300).await;
    let (_, a) = host.login("a").await;
    host.ok(&a, "9401", json!({})).await;
    let (slow_id, slow) = host.login("slow").await;
    host.ok(&slow, "9405", json!({ "count": 999_999 })).await;

    ship(&host.dirs.plugins(), 2);
    let check = finished_check(&host).await;
    assert_eq!(check["state"], "aborted", "{check}");
    let why = check["aborted"].as_str().unwrap();
    for part in [
        slow_id.as_str(),
        "did not return within 300 ms",
        "plugins.call_timeout_ms",
    ] {
        assert!(why.contains(part), "`{part}` missing: {why}");
    }
    // Schema 1 serves on, for both players.
    assert_eq!(tally(&host).await["schema"], 1);
    assert_eq!(
        host.ok(&a, "9401", json!({})).await,
        json!({ "schema": 1, "total": 2 })
    );
    assert_eq!(
        peek(&host, &slow).await.unwrap(),
        json!({ "schema": 1, "total": 999_999 })
    );
}

async fn sampled_above_the_cap(db: ScratchDb) {
    let host = host_on(&db, |config| {
        config.plugins.migration_check_max_players = 2;
    })
    .await;
    for account in ["a", "b", "c", "d", "e"] {
        let (_, token) = host.login(account).await;
        host.ok(&token, "9401", json!({})).await;
    }
    ship(&host.dirs.plugins(), 2);
    let check = finished_check(&host).await;
    assert_eq!(
        (
            &check["state"],
            &check["sampled"],
            &check["players"],
            &check["stored_players"],
            &check["checked"]
        ),
        (
            &json!("passed"),
            &json!(true),
            &json!(2),
            &json!(5),
            &json!(2)
        ),
        "{check}"
    );
    let checked = host.event_message("check").await;
    assert!(
        checked.contains("a random sample of 2 of 5 players"),
        "{checked}"
    );
}
