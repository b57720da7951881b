//! The scan over a real SQLite store (which players it reads, each once), and the comparison
//! of stored data with what comes back.

use super::*;
use crate::store::{sqlite::SqliteStore, SessionCheck, SqliteOptions};
use plugin_api::Player;
use serde_json::json;
use std::sync::Mutex as StdMutex;

/// A SQLite store with `count` players, each with data of module `m`; their ids, sorted.
async fn store_with_players(dir: &std::path::Path, count: usize) -> (SqliteStore, Vec<String>) {
    let store = SqliteStore::open(&dir.join("game.db"), SqliteOptions::default()).unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let id = crate::session::new_player_id();
        let player = store
            .login(&format!("a{n}"), Player::new(&id, "P", ""), 1)
            .await
            .unwrap();
        let token = format!("t{n}");
        store
            .create_session(&token, &player.player_id, i64::MAX)
            .await
            .unwrap();
        let session = SessionCheck {
            token_hash: &token,
            now_ms: 1,
        };
        let turn = store
            .begin_turn(&player.player_id, "m", session)
            .await
            .unwrap();
        let data = json!({ "n": n }).as_object().unwrap().clone();
        turn.end(None, Some(&data), 2).await.unwrap();
        ids.push(player.player_id);
    }
    ids.sort();
    (store, ids)
}

/// The players a scan of module `m` reads, in order, with at most `cap` players and a sample
/// starting after `start`.
async fn scanned(store: &SqliteStore, cap: u64, start: &str) -> (Vec<String>, DataCheckReport) {
    let checks = DataChecks::new(None, cap);
    let report = DataCheckReport::starting("m", "1", "f", (1, 2));
    checks.lock().insert("m".into(), report);
    let seen = StdMutex::new(Vec::new());
    checks
        .scan(store, "m", start.to_owned(), |player_id, _| {
            seen.lock().unwrap().push(player_id);
            async { Ok(Ok(())) }
        })
        .await
        .unwrap();
    let report = checks.reports().pop().unwrap();
    (seen.into_inner().unwrap(), report)
}

#[tokio::test]
async fn a_full_scan_reads_every_player_once_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let count = ModuleDataPages::PAGE as usize * 2 + 3;
    let (store, ids) = store_with_players(dir.path(), count).await;
    let (seen, report) = scanned(&store, 1_000_000, &ids[5]).await;
    assert_eq!(
        seen, ids,
        "in id order, each once, from the first (no sample)"
    );
    assert_eq!(
        (
            report.stored_players,
            report.players,
            report.sampled,
            report.checked
        ),
        (count as u64, count as u64, false, count as u64)
    );
}

#[tokio::test]
async fn a_sample_starts_after_its_start_and_wraps_around_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_with_players(dir.path(), 10).await;
    // Four players after the eighth: the last two, then the first two.
    let (seen, report) = scanned(&store, 4, &ids[7]).await;
    assert_eq!(
        seen,
        [&ids[8], &ids[9], &ids[0], &ids[1]].map(String::clone)
    );
    assert_eq!(
        (
            report.stored_players,
            report.players,
            report.sampled,
            report.checked
        ),
        (10, 4, true, 4)
    );
    // A start at the last player wraps, and stops before reading anyone twice.
    let (seen, _) = scanned(&store, 9, &ids[9]).await;
    assert_eq!(seen, ids[..9]);
}

#[test]
fn data_comes_back_with_defaults_added_and_numbers_equal_by_value() {
    let stored = json!({ "balance": 5, "tags": ["a"], "deep": { "x": 1 } });
    let with_defaults = json!({
        "balance": 5.0, "tags": ["a"], "deep": { "x": 1, "y": null }, "bonus": 0, "note": ""
    });
    assert!(comes_back(&stored, &with_defaults));
    assert!(comes_back(&stored, &stored));
}

#[test]
fn data_that_loses_or_changes_a_value_does_not_come_back() {
    let stored = json!({ "balance": 5, "tags": ["a", "b"] });
    for back in [
        json!({ "balance": 5 }),
        json!({ "balance": 6, "tags": ["a", "b"] }),
        json!({ "balance": 5, "tags": ["a"] }),
        json!({ "balance": 5, "tags": ["a", "b"], "bonus": 3 }),
        json!({ "balance": "5", "tags": ["a", "b"] }),
    ] {
        assert!(!comes_back(&stored, &back), "{back}");
    }
}
