//! The storage contract, held against every backend: SQLite, PostgreSQL and MariaDB run the
//! same cases (`tests_on!` below makes one test per case and backend). Cases that need a store
//! shared by several hosts open the database twice and skip SQLite, which is one host's.

use crate::databases::{Backend, ScratchDb};
use host::store::{
    AuditNote, Grant, ModuleData, PlayerTurn, SessionCheck, Store, StoreError, StoredReply,
    TurnEffects, TurnKey, TurnOptions,
};
use plugin_api::Player;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    login_creates_once_then_finds_the_same_player,
    sessions_expire_and_end,
    a_turn_writes_record_and_module_data_and_module_data_stays_per_module,
    a_turn_that_fails_to_write_changes_nothing,
    a_dropped_turn_writes_nothing_and_frees_the_player,
    an_unknown_player_is_reported,
    grants_and_revokes_are_audited_and_refusals_write_nothing,
    the_audit_log_cannot_be_rewritten_even_in_sql,
    data_survives_reopening,
    turns_of_different_players_run_in_parallel,
    turns_of_one_player_apply_one_at_a_time_across_hosts,
    a_turn_over_a_player_changed_meanwhile_writes_nothing,
    a_locked_turn_wins_over_the_other_hosts_turns,
    a_session_ended_on_another_host_ends_the_turn,
    a_session_ended_during_a_turn_stops_its_write,
    first_logins_on_two_hosts_make_one_player,
    a_newer_schema_is_refused,
    a_keyed_turn_that_writes_stores_its_reply_with_the_write,
    expired_keys_are_ignored_then_swept,
    a_keyed_turn_that_lost_the_race_stores_nothing_and_reads_the_winners_reply,
    two_locked_turns_giving_to_each_other_end_in_one_conflict,
    turns_read_at_once_each_get_their_own_player_module_and_session,
    reads_through_a_network_that_stops_answering_fail_in_time_and_recover,
    turns_written_at_once_each_apply_by_their_own_checks,
    turns_written_at_once_in_two_batches_at_once_apply_by_their_own_checks,
    a_write_the_database_refuses_fails_alone_among_writes_at_once,
    writes_through_a_network_that_stops_answering_fail_in_time_and_recover,
    writes_at_once_commit_together_with_and_without_module_data,
    keyed_turns_at_once_read_their_keys_and_store_their_replies_together,
    turns_unbatched_read_and_write_each_on_its_own,
);

const ALICE: &str = "p-alice";

fn alice() -> Player {
    Player::new(ALICE, "Alice", "")
}

/// A session check that any turn passes: its token was stored by [`logged_in`].
fn session() -> SessionCheck<'static> {
    SessionCheck {
        token_hash: "h-alice",
        now_ms: 1,
    }
}

/// A store with Alice registered and a session `h-alice` that does not expire.
async fn logged_in(db: &ScratchDb) -> Arc<dyn Store> {
    let store = db.open().await;
    store.login("alice", alice(), 0).await.unwrap();
    store
        .create_session("h-alice", ALICE, i64::MAX)
        .await
        .unwrap();
    store
}

async fn turn(store: &Arc<dyn Store>, module: &str) -> PlayerTurn {
    store.begin_turn(ALICE, module, session()).await.unwrap()
}

fn data(value: serde_json::Value) -> host::store::ModuleData {
    value.as_object().unwrap().clone()
}

fn note(reason: &str) -> AuditNote {
    AuditNote {
        operator: "ops".into(),
        reason: reason.into(),
        at_ms: 7,
    }
}

async fn login_creates_once_then_finds_the_same_player(db: ScratchDb) {
    let store = db.open().await;
    let first = store.login("alice", alice(), 1).await.unwrap();
    let again = store
        .login("alice", Player::new("p-other", "Other", ""), 2)
        .await
        .unwrap();
    assert_eq!(first.player_id, ALICE);
    assert_eq!(again, first);
    // Accounts are case-sensitive on every backend.
    let other = store
        .login("Alice", Player::new("p-upper", "A", ""), 3)
        .await
        .unwrap();
    assert_eq!(other.player_id, "p-upper");
}

async fn sessions_expire_and_end(db: ScratchDb) {
    let store = db.open().await;
    store.login("alice", alice(), 0).await.unwrap();
    store.create_session("h1", ALICE, 100).await.unwrap();
    store.create_session("h2", ALICE, 200).await.unwrap();
    let found = store.session("h1", 99).await.unwrap().unwrap();
    assert_eq!(
        (found.player_id.as_str(), found.expires_at_ms),
        (ALICE, 100)
    );
    assert_eq!(store.session("h1", 100).await.unwrap(), None);
    assert_eq!(store.session("nope", 0).await.unwrap(), None);
    assert_eq!(store.active_sessions(150).await.unwrap(), 1);
    assert!(store.end_session("h2").await.unwrap());
    assert!(!store.end_session("h2").await.unwrap());
    assert_eq!(store.active_sessions(0).await.unwrap(), 1);
}

async fn a_turn_writes_record_and_module_data_and_module_data_stays_per_module(db: ScratchDb) {
    let store = logged_in(&db).await;
    let turn_one = turn(&store, "activity").await;
    assert!(turn_one.module_data.is_empty());
    let mut player = turn_one.player.clone();
    player.gold += 10;
    player.items.insert("sword".into(), 2);
    player.name = "Alice 二".into();
    turn_one
        .end(Some(&player), Some(&data(json!({ "streak": 3 }))), 5)
        .await
        .unwrap();
    let again = turn(&store, "activity").await;
    assert_eq!(again.player, player);
    assert_eq!(again.module_data, data(json!({ "streak": 3 })));
    again.end(None, None, 6).await.unwrap();
    let mall = turn(&store, "mall").await;
    assert!(mall.module_data.is_empty(), "{:?}", mall.module_data);
    let details = store.player_details(ALICE).await.unwrap().unwrap();
    assert_eq!(details.account, "alice");
    assert_eq!(details.modules.len(), 1);
    assert_eq!(details.modules["activity"], data(json!({ "streak": 3 })));
}

async fn a_turn_that_fails_to_write_changes_nothing(db: ScratchDb) {
    let store = logged_in(&db).await;
    let first = turn(&store, "m").await;
    let before = first.player.clone();
    let mut broken = before.clone();
    broken.gold = -1; // the CHECK fails after the module data is written
    let err = first
        .end(Some(&broken), Some(&data(json!({ "x": 1 }))), 1)
        .await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    let after = turn(&store, "m").await;
    assert_eq!(after.player, before);
    assert!(after.module_data.is_empty());
}

async fn a_dropped_turn_writes_nothing_and_frees_the_player(db: ScratchDb) {
    let store = logged_in(&db).await;
    let first = turn(&store, "m").await;
    drop(first);
    // No lock outlives it: the next turn is not kept waiting (the statement timeout is 10 s;
    // this allows 5).
    let next = tokio::time::timeout(Duration::from_secs(5), turn(&store, "m"))
        .await
        .expect("a dropped turn must free the player");
    assert_eq!(next.player.gold, alice().gold);
}

async fn an_unknown_player_is_reported(db: ScratchDb) {
    let store = db.open().await;
    let err = store.begin_turn("ghost", "m", session()).await.err();
    assert!(matches!(err, Some(StoreError::NoSuchPlayer(_))), "{err:?}");
    assert!(store.player_details("ghost").await.unwrap().is_none());
    assert!(store.find_player("ghost").await.unwrap().is_none());
}

async fn grants_and_revokes_are_audited_and_refusals_write_nothing(db: ScratchDb) {
    let store = logged_in(&db).await;
    let take = Grant {
        gold: -5_000,
        ..Grant::default()
    };
    let refused = store.grant(ALICE, &take, &note("too much")).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(store.audit_log(Some(ALICE), 10).await.unwrap(), vec![]);

    let give = Grant {
        gold: 500,
        items: [("gem".to_owned(), 2)].into(),
        ..Grant::default()
    };
    let granted = store.grant(ALICE, &give, &note("apology")).await.unwrap();
    assert_eq!(granted.before["gold"], 1000);
    assert_eq!(granted.after["gold"], 1500);
    assert_eq!(granted.after["items"]["gem"], 2);
    let found = store.find_player("alice").await.unwrap().unwrap();
    assert_eq!(found.player.gold, 1500);

    let revoked = store.revoke_sessions(ALICE, &note("stolen")).await.unwrap();
    assert_eq!(revoked.before["sessions"], 1);
    assert_eq!(store.session("h-alice", 1).await.unwrap(), None);
    assert!(revoked.id > granted.id);
    assert_eq!(
        store.audit_log(Some(ALICE), 10).await.unwrap(),
        vec![revoked.clone(), granted.clone()]
    );
    assert_eq!(store.audit_log(None, 1).await.unwrap(), vec![revoked]);
    assert_eq!(store.audit_log(Some("someone"), 10).await.unwrap(), vec![]);
}

async fn the_audit_log_cannot_be_rewritten_even_in_sql(db: ScratchDb) {
    let store = logged_in(&db).await;
    let give = Grant {
        gold: 5,
        ..Grant::default()
    };
    store.grant(ALICE, &give, &note("why")).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    for statement in ["UPDATE audit SET reason = 'rewritten'", "DELETE FROM audit"] {
        let err = db.execute(statement).await.unwrap_err();
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
    let store = db.open().await;
    assert_eq!(store.audit_log(None, 10).await.unwrap()[0].reason, "why");
}

async fn data_survives_reopening(db: ScratchDb) {
    let store = logged_in(&db).await;
    let first = turn(&store, "m").await;
    first
        .end(None, Some(&data(json!({ "kept": true }))), 1)
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = db.open().await;
    let session = store.session("h-alice", 1).await.unwrap().unwrap();
    assert_eq!(session.player_id, ALICE);
    assert_eq!(
        turn(&store, "m").await.module_data,
        data(json!({ "kept": true }))
    );
}

async fn turns_of_different_players_run_in_parallel(db: ScratchDb) {
    let store = logged_in(&db).await;
    store
        .login("bob", Player::new("p-bob", "Bob", ""), 0)
        .await
        .unwrap();
    store
        .create_session("h-bob", "p-bob", i64::MAX)
        .await
        .unwrap();
    let alice_turn = turn(&store, "m").await; // held open
    let bob = SessionCheck {
        token_hash: "h-bob",
        now_ms: 1,
    };
    let bob_turn =
        tokio::time::timeout(Duration::from_secs(5), store.begin_turn("p-bob", "m", bob))
            .await
            .expect("Bob's turn must not wait for Alice's")
            .unwrap();
    let mut richer = bob_turn.player.clone();
    richer.gold += 1;
    bob_turn.end(Some(&richer), None, 2).await.unwrap();
    alice_turn.end(None, None, 3).await.unwrap();
}

async fn turns_of_one_player_apply_one_at_a_time_across_hosts(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // one host's store: its player_locks keep turns apart (tests/it/protocol.rs)
    }
    let hosts = [logged_in(&db).await, db.open().await];
    let start = turn(&hosts[0], "m").await;
    let gold = start.player.gold;
    drop(start);
    // 40 read-modify-write turns, half on each host, all at once, each run again while its
    // write reports a conflict (as `game::run_command` does): with a lost update the balance
    // would come out short, with a write applied twice long.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = hosts[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let t = turn(&store, "m").await;
                let mut player = t.player.clone();
                let mut counter = t.module_data.clone();
                let n = counter.get("n").and_then(|n| n.as_i64()).unwrap_or(0);
                counter.insert("n".into(), json!(n + 1));
                player.gold += 1;
                tokio::task::yield_now().await;
                match t.end(Some(&player), Some(&counter), 1).await {
                    Ok(()) => return conflicts,
                    Err(StoreError::Conflict) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let end = turn(&hosts[1], "m").await;
    assert_eq!(end.player.gold, gold + 40);
    assert_eq!(end.module_data["n"], 40);
    assert!(conflicts > 0, "40 turns at once on two hosts never met");
}

async fn a_turn_over_a_player_changed_meanwhile_writes_nothing(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // one host's store: its player_locks keep turns apart
    }
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    // Twice: a player with no data for the module yet (MariaDB's first write is a
    // transaction of its own), then one with data.
    for round in 1..=2 {
        let slow = turn(&host_a, "m").await;
        // Meanwhile another host's turn writes the player...
        let quick = turn(&host_b, "m").await;
        let mut richer = quick.player.clone();
        richer.gold += 10;
        quick
            .end(
                Some(&richer),
                Some(&data(json!({ "by": "b", "round": round }))),
                2,
            )
            .await
            .unwrap();
        // ... so the first turn's write, of the record or of the data, applies nothing.
        let mut spent = slow.player.clone();
        spent.gold -= 1;
        let stale = data(json!({ "by": "a", "round": round }));
        let err = slow.end(Some(&spent), Some(&stale), 3).await.err();
        assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
        let again = turn(&host_a, "m").await;
        assert_eq!(again.player.gold, richer.gold);
        assert_eq!(
            again.module_data,
            data(json!({ "by": "b", "round": round }))
        );
        let data_only = again.end(None, Some(&stale), 4);
        // An operator's grant, too, makes a turn that read the player before it run again.
        let before_grant = turn(&host_a, "m").await;
        data_only.await.unwrap();
        let err = before_grant.end(None, Some(&stale), 5).await.err();
        assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
        let reader = turn(&host_a, "m").await;
        let grant = Grant {
            gold: 5,
            ..Grant::default()
        };
        host_b.grant(ALICE, &grant, &note("round")).await.unwrap();
        let err = reader.end(Some(&alice()), None, 6).await.err();
        assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
        assert_eq!(turn(&host_a, "m").await.player.gold, richer.gold + 5);
    }
}

async fn a_locked_turn_wins_over_the_other_hosts_turns(db: ScratchDb) {
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    let locked = host_a
        .begin_locked_turn(ALICE, "m", session())
        .await
        .unwrap();
    // Another host's turn reads meanwhile; its write waits for the lock, then finds the
    // player changed. (On SQLite, a store of one host, both are plain turns: the second
    // write finds the record changed by the first.)
    let other = turn(&host_b, "m").await;
    let other_write = tokio::spawn(async move {
        let mut richer = other.player.clone();
        richer.gold += 100;
        other.end(Some(&richer), None, 2).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut spent = locked.player.clone();
    spent.gold -= 1;
    // The module's first data for the player: on MariaDB, in the locked turn's transaction.
    locked
        .end(Some(&spent), Some(&data(json!({ "a": 1 }))), 3)
        .await
        .unwrap();
    if db.backend.is_shared() {
        let err = other_write.await.unwrap().err();
        assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
        let after = turn(&host_a, "m").await;
        assert_eq!(after.player.gold, alice().gold - 1);
        assert_eq!(after.module_data, data(json!({ "a": 1 })));
    } else {
        other_write.await.unwrap().unwrap();
    }
    // A locked turn that writes nothing, or is dropped, frees the player at once.
    let idle = host_a
        .begin_locked_turn(ALICE, "m", session())
        .await
        .unwrap();
    idle.end(None, None, 4).await.unwrap();
    drop(
        host_a
            .begin_locked_turn(ALICE, "m", session())
            .await
            .unwrap(),
    );
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        host_b.begin_locked_turn(ALICE, "m", session()),
    )
    .await
    .expect("a locked turn ended or dropped must free the player")
    .unwrap();
    next.end(None, None, 5).await.unwrap();
}

async fn a_session_ended_during_a_turn_stops_its_write(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // the embedded store trusts this host's session cache, which sees every logout
    }
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    let t = turn(&host_a, "m").await;
    assert!(host_b.end_session("h-alice").await.unwrap());
    let mut richer = t.player.clone();
    richer.gold += 1;
    let err = t.end(Some(&richer), None, 2).await.err();
    assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
    // Run again, the turn finds the session ended, and the player is as before.
    let err = host_a.begin_turn(ALICE, "m", session()).await.err();
    assert!(matches!(err, Some(StoreError::SessionEnded)), "{err:?}");
    let details = host_b.player_details(ALICE).await.unwrap().unwrap();
    assert_eq!(details.player.gold, alice().gold);
}

async fn a_session_ended_on_another_host_ends_the_turn(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // the embedded store trusts this host's session cache, which sees every logout
    }
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    assert!(host_b.end_session("h-alice").await.unwrap());
    let err = host_a.begin_turn(ALICE, "m", session()).await.err();
    assert!(matches!(err, Some(StoreError::SessionEnded)), "{err:?}");
    let expired = SessionCheck {
        token_hash: "h-short",
        now_ms: 50,
    };
    host_a.create_session("h-short", ALICE, 50).await.unwrap();
    let err = host_a.begin_turn(ALICE, "m", expired).await.err();
    assert!(matches!(err, Some(StoreError::SessionEnded)), "{err:?}");
}

async fn first_logins_on_two_hosts_make_one_player(db: ScratchDb) {
    let hosts = [db.open().await, db.open().await];
    let logins = (0..8).map(|i| {
        let store = hosts[i % 2].clone();
        tokio::spawn(async move {
            store
                .login("carol", Player::new(format!("p-carol-{i}"), "Carol", ""), 0)
                .await
                .unwrap()
                .player_id
        })
    });
    let mut ids = Vec::new();
    for login in logins.collect::<Vec<_>>() {
        ids.push(login.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn a_newer_schema_is_refused(db: ScratchDb) {
    let store = db.open().await;
    store.close().await.unwrap();
    drop(store);
    let newer = match db.backend {
        Backend::Sqlite => "PRAGMA user_version = 99",
        Backend::Postgres => "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'from the future', TRUE, decode('00', 'hex'), 0)",
        Backend::MySql => "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'from the future', TRUE, X'00', 0)",
    };
    db.execute(newer).await.unwrap();
    let err = db.try_open().await.err().expect("refused");
    // The server stores are at version 6 (pushes); SQLite at 5.
    let known = if db.backend.is_shared() { 6 } else { 5 };
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, known: k } if k == known),
        "{err}"
    );
    assert!(err.to_string().contains("version 99"), "{err}");
}

/// A turn of Alice's on module `m` under `key` (fingerprint `fingerprint`), keys created at or
/// before `expired_at_ms` ignored; `locked` as a turn run again after a conflict.
async fn keyed_turn(
    store: &Arc<dyn Store>,
    key: &str,
    fingerprint: &str,
    expired_at_ms: i64,
    locked: bool,
) -> PlayerTurn {
    let options = TurnOptions {
        locked,
        key: Some(TurnKey {
            key,
            fingerprint,
            expired_at_ms,
        }),
    };
    store
        .open_turn(ALICE, "m", session(), options)
        .await
        .unwrap()
}

fn stored(fingerprint: &str, reply: &str) -> Option<StoredReply> {
    Some(StoredReply {
        fingerprint: fingerprint.into(),
        reply: reply.into(),
    })
}

async fn a_keyed_turn_that_writes_stores_its_reply_with_the_write(db: ScratchDb) {
    let store = logged_in(&db).await;
    let first = keyed_turn(&store, "k1", "f1", 0, false).await;
    assert_eq!(first.stored, None);
    let mut richer = first.player.clone();
    richer.gold += 5;
    first
        .end_replying(
            Some(&richer),
            None,
            &TurnEffects::default(),
            r#"{"gold":1005}"#,
            10,
        )
        .await
        .unwrap();
    // Seen by the next turn under the key, whatever its fingerprint (the caller compares),
    // locked or not; not by a turn under another key, nor by an unkeyed one.
    for locked in [false, true] {
        let again = keyed_turn(&store, "k1", "other", 0, locked).await;
        assert_eq!(again.stored, stored("f1", r#"{"gold":1005}"#));
        assert_eq!(again.player.gold, 1005);
        again.end(None, None, 11).await.unwrap();
    }
    assert_eq!(keyed_turn(&store, "k2", "f1", 0, false).await.stored, None);
    assert_eq!(turn(&store, "m").await.stored, None);
    // Module data alone is a write too.
    let data_only = keyed_turn(&store, "k3", "f3", 0, false).await;
    data_only
        .end_replying(
            None,
            Some(&data(json!({ "n": 1 }))),
            &TurnEffects::default(),
            "{}",
            12,
        )
        .await
        .unwrap();
    assert_eq!(
        keyed_turn(&store, "k3", "f3", 0, false).await.stored,
        stored("f3", "{}")
    );
    // A turn that writes nothing stores nothing.
    let read = keyed_turn(&store, "k4", "f4", 0, false).await;
    read.end_replying(None, None, &TurnEffects::default(), "{}", 13)
        .await
        .unwrap();
    assert_eq!(keyed_turn(&store, "k4", "f4", 0, false).await.stored, None);
}

async fn expired_keys_are_ignored_then_swept(db: ScratchDb) {
    let store = logged_in(&db).await;
    for (key, at) in [("old", 100), ("new", 200)] {
        let turn = keyed_turn(&store, key, "f", 0, false).await;
        let mut player = turn.player.clone();
        player.gold += 1;
        turn.end_replying(Some(&player), None, &TurnEffects::default(), "{}", at)
            .await
            .unwrap();
    }
    // Created at or before the moment given: expired.
    assert_eq!(
        keyed_turn(&store, "old", "f", 100, false).await.stored,
        None
    );
    assert!(keyed_turn(&store, "old", "f", 99, false)
        .await
        .stored
        .is_some());
    // An expired key's row is replaced by the next write under it.
    let reused = keyed_turn(&store, "old", "g", 100, false).await;
    let mut player = reused.player.clone();
    player.gold += 1;
    reused
        .end_replying(
            Some(&player),
            None,
            &TurnEffects::default(),
            r#"{"again":true}"#,
            300,
        )
        .await
        .unwrap();
    assert_eq!(
        keyed_turn(&store, "old", "g", 200, false).await.stored,
        stored("g", r#"{"again":true}"#)
    );
    // The sweep deletes at most `limit` a statement, only what is expired.
    assert_eq!(store.delete_expired_keys(200, 10).await.unwrap(), 1);
    assert_eq!(store.delete_expired_keys(200, 10).await.unwrap(), 0);
    assert!(keyed_turn(&store, "old", "g", 0, false)
        .await
        .stored
        .is_some());
    assert_eq!(keyed_turn(&store, "new", "f", 0, false).await.stored, None);
}

async fn a_keyed_turn_that_lost_the_race_stores_nothing_and_reads_the_winners_reply(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // one host's store: its player_locks keep turns apart
    }
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    // Twice: with the record alone, then with the module's data (a first write of it on
    // MariaDB, then not).
    for (round, with_data) in [(1, false), (2, true), (3, true)] {
        let key = format!("race-{round}");
        let slow = keyed_turn(&host_a, &key, "f", 0, false).await;
        let quick = keyed_turn(&host_b, &key, "f", 0, false).await;
        let module_data = with_data.then(|| data(json!({ "round": round })));
        let mut won = quick.player.clone();
        won.gold += 10;
        quick
            .end_replying(
                Some(&won),
                module_data.as_ref(),
                &TurnEffects::default(),
                r#"{"by":"b"}"#,
                2,
            )
            .await
            .unwrap();
        let mut lost = slow.player.clone();
        lost.gold += 1;
        let err = slow
            .end_replying(
                Some(&lost),
                module_data.as_ref(),
                &TurnEffects::default(),
                r#"{"by":"a"}"#,
                3,
            )
            .await
            .err();
        assert!(matches!(err, Some(StoreError::Conflict)), "{err:?}");
        let again = keyed_turn(&host_a, &key, "f", 0, true).await;
        assert_eq!(again.stored, stored("f", r#"{"by":"b"}"#));
        assert_eq!(again.player.gold, won.gold);
        again.end(None, None, 4).await.unwrap();
    }
}

/// Two hosts' locked turns (each holds its own player's row from its read) that give gold to
/// each other wait for each other's row: the database breaks the cycle, and the turn it
/// picks ends in [`StoreError::Conflict`], to be run again, not in a database failure. The
/// other commits; nothing of the loser's applies.
async fn two_locked_turns_giving_to_each_other_end_in_one_conflict(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // one host's store: its player_locks keep a gift's players apart
    }
    const BOB: &str = "p-bob";
    let host_a = logged_in(&db).await;
    let host_b = db.open().await;
    host_b
        .login("bob", Player::new(BOB, "Bob", ""), 0)
        .await
        .unwrap();
    host_b.create_session("h-bob", BOB, i64::MAX).await.unwrap();
    let bob_session = SessionCheck {
        token_hash: "h-bob",
        now_ms: 1,
    };
    let gift = |to: &str, gold| TurnEffects {
        gifts: vec![host::store::push::GoldGift {
            player_id: to.to_owned(),
            gold,
        }],
        ..TurnEffects::default()
    };
    let alices = host_a
        .begin_locked_turn(ALICE, "social", session())
        .await
        .unwrap();
    let bobs = host_b
        .begin_locked_turn(BOB, "social", bob_session)
        .await
        .unwrap();
    // Alice's turn writes her row (held), then waits for Bob's; Bob's gives to Alice, whose
    // id sorts first, and waits for hers.
    let alice_gives = tokio::spawn(async move {
        let mut gave = alices.player.clone();
        gave.gold -= 5;
        alices
            .end_replying(Some(&gave), None, &gift(BOB, 5), "{}", 2)
            .await
    });
    let bob_gives = tokio::spawn(async move {
        let mut gave = bobs.player.clone();
        gave.gold -= 7;
        bobs.end_replying(Some(&gave), None, &gift(ALICE, 7), "{}", 2)
            .await
    });
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        (alice_gives.await.unwrap(), bob_gives.await.unwrap())
    })
    .await
    .expect("the database breaks the cycle");
    let (alice_gold, bob_gold) = match ended {
        (Ok(()), Err(StoreError::Conflict)) => (alice().gold - 5, alice().gold + 5),
        (Err(StoreError::Conflict), Ok(())) => (alice().gold + 7, alice().gold - 7),
        other => panic!("one gift commits, the other is a conflict: {other:?}"),
    };
    let alice_now = turn(&host_a, "social").await;
    assert_eq!(alice_now.player.gold, alice_gold);
    let bob_now = host_b.begin_turn(BOB, "social", bob_session).await.unwrap();
    assert_eq!(bob_now.player.gold, bob_gold);
}

/// Many turns read at once (server stores read them in batches, several in one statement):
/// each gets its own player's record and module data, and its own session's verdict (on a
/// server store: the embedded one leaves sessions to this host's cache), however the others
/// of its batch end.
async fn turns_read_at_once_each_get_their_own_player_module_and_session(db: ScratchDb) {
    const PLAYERS: usize = 40;
    const ENDED: usize = 7;
    let store = db.open().await;
    for n in 0..PLAYERS {
        let id = format!("p-{n}");
        store
            .login(
                &format!("a-{n}"),
                Player::new(&id, format!("Player {n}"), ""),
                0,
            )
            .await
            .unwrap();
        store
            .create_session(&format!("h-{n}"), &id, i64::MAX)
            .await
            .unwrap();
        let session = SessionCheck {
            token_hash: &format!("h-{n}"),
            now_ms: 1,
        };
        let turn = store.begin_turn(&id, "m", session).await.unwrap();
        let mut record = turn.player.clone();
        record.gold = n as i64;
        turn.end(Some(&record), Some(&data(json!({ "n": n }))), 2)
            .await
            .unwrap();
    }
    assert!(store.end_session(&format!("h-{ENDED}")).await.unwrap());

    // Every player's turn on "m" and on "k" (no data there), a player with none, and a turn
    // with another player's token, all at once.
    let mut turns = tokio::task::JoinSet::new();
    let mut asks = Vec::new();
    for n in 0..PLAYERS {
        for module in ["m", "k"] {
            asks.push((format!("p-{n}"), module, format!("h-{n}")));
        }
    }
    asks.push(("ghost".to_owned(), "m", "h-0".to_owned()));
    asks.push(("p-3".to_owned(), "m", "h-4".to_owned()));
    for (place, (player, module, token)) in asks.iter().cloned().enumerate() {
        let store = store.clone();
        turns.spawn(async move {
            let session = SessionCheck {
                token_hash: &token,
                now_ms: 1,
            };
            let turn = store.begin_turn(&player, module, session).await;
            let seen = turn.map(|turn| (turn.player.clone(), turn.module_data.clone()));
            (place, seen)
        });
    }
    let checks_sessions = db.backend.is_shared();
    let mut answered = 0;
    while let Some(done) = turns.join_next().await {
        let (place, seen) = done.unwrap();
        let (player, module, token) = &asks[place];
        answered += 1;
        match seen {
            Ok((record, module_data)) => {
                let n: usize = player[2..].parse().unwrap();
                if checks_sessions {
                    assert_eq!(token, &format!("h-{n}"), "{player} read with {token}");
                    assert_ne!(n, ENDED, "{player}'s session has ended");
                }
                assert_eq!(record.name, format!("Player {n}"), "{player}'s record");
                assert_eq!(record.gold, n as i64, "{player}'s record");
                let expected = match *module {
                    "m" => data(json!({ "n": n })),
                    _ => data(json!({})),
                };
                assert_eq!(module_data, expected, "{player}'s data of {module}");
            }
            Err(StoreError::SessionEnded) => assert!(
                checks_sessions
                    && (player == &format!("p-{ENDED}") || (player == "p-3" && token == "h-4")),
                "{player} with {token}: its session holds"
            ),
            Err(StoreError::NoSuchPlayer(id)) => assert_eq!(id, "ghost"),
            Err(e) => panic!("{player} on {module}: {e}"),
        }
    }
    assert_eq!(answered, asks.len());
}

/// Registers players `p-0` … with sessions `h-0` …, each with `{"n": n}` saved by module "m"
/// for the first `with_data` of them.
async fn players_with_sessions(store: &Arc<dyn Store>, count: usize, with_data: usize) {
    for n in 0..count {
        let id = format!("p-{n}");
        let player = Player::new(&id, format!("Player {n}"), "");
        store.login(&format!("a-{n}"), player, 0).await.unwrap();
        store
            .create_session(&format!("h-{n}"), &id, i64::MAX)
            .await
            .unwrap();
        if n < with_data {
            let turn = store.begin_turn(&id, "m", check(n)).await.unwrap();
            turn.end(None, Some(&data(json!({ "n": n }))), 2)
                .await
                .unwrap();
        }
    }
}

/// A turn on module "m" of each of players `p-0` … `p-{count - 1}`, begun one after another.
async fn turns_on(store: &Arc<dyn Store>, count: usize) -> Vec<(usize, PlayerTurn)> {
    let mut turns = Vec::new();
    for n in 0..count {
        let turn = store.begin_turn(&format!("p-{n}"), "m", check(n)).await;
        turns.push((n, turn.unwrap()));
    }
    turns
}

/// Player `p-{n}` as stored.
async fn details_of(store: &Arc<dyn Store>, n: usize) -> host::store::PlayerDetails {
    let details = store.player_details(&format!("p-{n}")).await.unwrap();
    details.expect("a registered player")
}

/// Player `p-{n}` as stored is still named `Player {n}`, has `gold`, and `saved` as its data
/// of module "m".
async fn assert_stored(store: &Arc<dyn Store>, n: usize, gold: i64, saved: Option<ModuleData>) {
    let details = details_of(store, n).await;
    assert_eq!(details.player.name, format!("Player {n}"), "p-{n}'s name");
    assert_eq!(details.player.gold, gold, "p-{n}'s gold");
    assert_eq!(
        details.modules.get("m"),
        saved.as_ref(),
        "p-{n}'s data of m"
    );
}

/// Player `p-{n}`'s session check.
fn check(n: usize) -> SessionCheck<'static> {
    SessionCheck {
        token_hash: Box::leak(format!("h-{n}").into_boxed_str()),
        now_ms: 1,
    }
}

/// Many turns write at once (server stores apply plain writes in batches, several in one
/// statement or transaction): each write applies exactly when its own checks hold (the
/// version it read, its session), whatever the others of its batch do; every turn learns its
/// own outcome, and what applied is each player's own record and module data.
async fn turns_written_at_once_each_apply_by_their_own_checks(db: ScratchDb) {
    let store = db.open().await;
    written_at_once_each_by_their_own_checks(&db, store).await;
}

/// The same with two batches of reads and two of writes allowed at once
/// (`store.batch_readers`, `store.batch_writers`; one of each by default), as a host with a
/// database further away may set them.
async fn turns_written_at_once_in_two_batches_at_once_apply_by_their_own_checks(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // the settings are a server store's
    }
    let settings = host::store::server::PoolSettings {
        batch_readers: 2,
        batch_writers: 2,
        ..crate::databases::pool_settings()
    };
    let store = db.open_with(&settings).await;
    written_at_once_each_by_their_own_checks(&db, store).await;
}

async fn written_at_once_each_by_their_own_checks(db: &ScratchDb, store: Arc<dyn Store>) {
    const PLAYERS: usize = 40;
    // p-5's record is changed by a grant after its turn read it; p-7's session ends then; p-9
    // has two turns over the same version.
    const GRANTED: usize = 5;
    const ENDED: usize = 7;
    const TWICE: usize = 9;
    players_with_sessions(&store, PLAYERS, PLAYERS / 2).await;

    let mut turns = turns_on(&store, PLAYERS).await;
    // One host's store has one turn of a player at a time (the host's player locks): only
    // shared ones see two.
    let shared = db.backend.is_shared();
    if shared {
        let again = store
            .begin_turn(&format!("p-{TWICE}"), "m", check(TWICE))
            .await;
        turns.push((TWICE, again.unwrap()));
    }
    let grant = Grant {
        gold: 1000,
        ..Grant::default()
    };
    store
        .grant(&format!("p-{GRANTED}"), &grant, &note("meanwhile"))
        .await
        .unwrap();
    assert!(store.end_session(&format!("h-{ENDED}")).await.unwrap());

    // Every turn ends at once: gold n + 1 and its data `{"w": n}` (the second half of the
    // players had no data of "m" before).
    let mut ends = tokio::task::JoinSet::new();
    for (place, (n, turn)) in turns.into_iter().enumerate() {
        ends.spawn(async move {
            let mut record = turn.player.clone();
            record.gold = n as i64 + 1;
            let written = turn
                .end(Some(&record), Some(&data(json!({ "w": n }))), 3)
                .await;
            (place, n, written)
        });
    }
    let mut twice = Vec::new();
    for (place, n, written) in ends.join_all().await {
        match n {
            TWICE if shared => twice.push(written.is_ok()),
            // The embedded store leaves the checks to its host (its player locks, its session
            // cache): there the grant and the logout came between turns, and the turns apply.
            GRANTED | ENDED if shared => {
                assert!(matches!(written, Err(StoreError::Conflict)), "{written:?}")
            }
            _ => assert!(written.is_ok(), "turn {place} of p-{n}: {written:?}"),
        }
    }
    if shared {
        // One of the two turns over p-9's version applied, the other conflicted.
        assert_eq!(
            twice.iter().filter(|applied| **applied).count(),
            1,
            "{twice:?}"
        );
    }

    for n in 0..PLAYERS {
        let stale = shared && (n == GRANTED || n == ENDED);
        let (gold, saved) = match (stale, n < PLAYERS / 2) {
            (false, _) => (n as i64 + 1, Some(data(json!({ "w": n })))),
            (true, true) => (
                alice().gold + if n == GRANTED { 1000 } else { 0 },
                Some(data(json!({ "n": n }))),
            ),
            (true, false) => (alice().gold, None),
        };
        assert_stored(&store, n, gold, saved).await;
    }
}

/// Writes at once whose checks all hold commit together (on a server store: in batches of
/// several, counted in [`Store::batch_counts`]), each with its own record and module data:
/// none, data over a row that exists, and a module's first data.
async fn writes_at_once_commit_together_with_and_without_module_data(db: ScratchDb) {
    const PLAYERS: usize = 30;
    if !db.backend.is_shared() {
        return; // the embedded store batches on its own thread (SqliteStore), uncounted
    }
    let store = db.open().await;
    players_with_sessions(&store, PLAYERS, PLAYERS).await;
    // Whether writes meet in a batch depends on timing (a write that finds none waiting goes
    // alone): rounds until one did, each checked whole.
    for round in 0..20 {
        let mut turns = Vec::new();
        for n in 0..PLAYERS {
            let module = match n % 3 {
                2 => format!("first-{round}"),
                _ => "m".to_owned(),
            };
            let turn = store.begin_turn(&format!("p-{n}"), &module, check(n)).await;
            turns.push((n, turn.unwrap()));
        }
        let mut ends = tokio::task::JoinSet::new();
        for (n, turn) in turns {
            ends.spawn(async move {
                let mut record = turn.player.clone();
                record.gold = (round * 100 + n) as i64;
                let saved = data(json!({ "round": round, "n": n }));
                let saved = (n % 3 != 0).then_some(&saved);
                turn.end(Some(&record), saved, 3).await
            });
        }
        for written in ends.join_all().await {
            written.unwrap();
        }
        for n in 0..PLAYERS {
            let details = details_of(&store, n).await;
            assert_eq!(
                details.player.gold,
                (round * 100 + n) as i64,
                "p-{n}'s gold"
            );
            let this_round = data(json!({ "round": round, "n": n }));
            let (module, expected) = match n % 3 {
                // Untouched since players_with_sessions saved it.
                0 => ("m".to_owned(), data(json!({ "n": n }))),
                1 => ("m".to_owned(), this_round),
                _ => (format!("first-{round}"), this_round),
            };
            assert_eq!(
                details.modules.get(&module),
                Some(&expected),
                "p-{n}'s {module}"
            );
        }
        let counts = store.batch_counts();
        assert_eq!(counts.write_batches_undone, 0, "{counts:?}");
        if counts.writes > counts.write_batches {
            return; // a batch of several committed
        }
    }
    panic!(
        "no writes met in a batch in 20 rounds: {:?}",
        store.batch_counts()
    );
}

/// Keyed turns (what the client SDK sends) batch as plain ones do: turns opened at once read
/// each its own player's reply under the same key (one player has a live reply, one an
/// expired one, the rest none; every fifth turn has no key), and those that write store their
/// replies with their writes, several keyed writes in one batch, with and without module data.
/// A retry under the key then reads its own player's reply. Last, on a server store, a keyed
/// write whose player changed since its read, ended among others, stores no reply.
async fn keyed_turns_at_once_read_their_keys_and_store_their_replies_together(db: ScratchDb) {
    let store = db.open().await;
    players_with_sessions(&store, KEYED_PLAYERS, KEYED_PLAYERS).await;
    // p-0's key "seen" has a live reply (stored at 200), p-1's "k-0" an expired one (at 50).
    for (n, key, at) in [(0, "seen", 200), (1, "k-0", 50)] {
        let turn = store
            .open_turn(&format!("p-{n}"), "m", check(n), keyed(key))
            .await
            .unwrap();
        let record = turn.player.clone();
        let reply = format!("first {key}");
        let none = TurnEffects::default();
        let ended = turn.end_replying(Some(&record), None, &none, &reply, at);
        ended.await.unwrap();
    }
    let shared = db.backend.is_shared();
    let mut batched = false;
    for round in 0..20 {
        let before = store.batch_counts();
        keyed_round(&store, round, None).await;
        if !shared {
            // The embedded store batches on its own thread (SqliteStore), uncounted.
            batched = true;
            break;
        }
        let counts = store.batch_counts();
        assert_eq!(counts.write_batches_undone, 0, "{counts:?}");
        // Every read is counted, batched or alone (a turn of each player, then a retry of
        // each keyed one but p-0); of the writes, only those that committed in a batch. More
        // than the unkeyed ones: keyed writes were among them.
        let retries = (1..KEYED_PLAYERS).filter(|n| n % 5 != 4).count();
        assert_eq!(
            counts.reads - before.reads,
            (KEYED_PLAYERS + retries) as u64,
            "{counts:?}"
        );
        if counts.writes - before.writes > (KEYED_PLAYERS / 5) as u64 {
            batched = true;
            break;
        }
    }
    assert!(
        batched,
        "no keyed writes met in a batch in 20 rounds: {:?}",
        store.batch_counts()
    );
    // The embedded store leaves this check to its host (its player locks).
    if shared {
        keyed_round(&store, 20, Some(2)).await;
    }
}

/// Players of [`keyed_turns_at_once_read_their_keys_and_store_their_replies_together`].
const KEYED_PLAYERS: usize = 30;

/// A turn's options under `key` (fingerprint "f"), keys stored at or before 100 expired.
fn keyed(key: &'static str) -> TurnOptions<'static> {
    TurnOptions {
        locked: false,
        key: Some(TurnKey {
            key,
            fingerprint: "f",
            expired_at_ms: 100,
        }),
    }
}

/// One round of [`keyed_turns_at_once_read_their_keys_and_store_their_replies_together`]: a
/// turn of every player opened at once, under the round's key `k-{round}` (p-0 under "seen",
/// a retry that writes nothing; every fifth without a key), ended at once with gold and a
/// reply of its own, and each key's reply read back. Player `changed`, granted gold after its
/// read, conflicts and stores no reply.
async fn keyed_round(store: &Arc<dyn Store>, round: usize, changed: Option<usize>) {
    let key: &'static str = Box::leak(format!("k-{round}").into_boxed_str());
    let key_of = |n: usize| if n == 0 { "seen" } else { key };
    let opens = (0..KEYED_PLAYERS).map(|n| async move {
        let options = match n % 5 {
            4 => TurnOptions::default(),
            _ => keyed(key_of(n)),
        };
        let id = format!("p-{n}");
        (
            n,
            store.open_turn(&id, "m", check(n), options).await.unwrap(),
        )
    });
    let opened = futures::future::join_all(opens).await;
    if let Some(n) = changed {
        let grant = Grant {
            gold: 1,
            ..Grant::default()
        };
        let (id, note) = (format!("p-{n}"), note("meanwhile"));
        store.grant(&id, &grant, &note).await.unwrap();
    }
    let mut ends = tokio::task::JoinSet::new();
    for (n, turn) in opened {
        match n {
            0 => assert_eq!(turn.stored, stored("f", "first seen"), "p-0"),
            _ => assert_eq!(
                turn.stored, None,
                "p-{n}: an expired key, a new one or none"
            ),
        }
        if n == 0 {
            continue; // a retry: it runs nothing, and the turn is dropped
        }
        ends.spawn(async move {
            let mut record = turn.player.clone();
            record.gold = (round * 100 + n) as i64;
            let saved = data(json!({ "round": round, "n": n }));
            let saved = (n % 2 == 0).then_some(&saved);
            let none = TurnEffects::default();
            let reply = format!("reply {round} {n}");
            let ended = match n % 5 {
                4 => turn.end(Some(&record), saved, 300).await,
                _ => {
                    turn.end_replying(Some(&record), saved, &none, &reply, 300)
                        .await
                }
            };
            (n, ended)
        });
    }
    for (n, ended) in ends.join_all().await {
        match ended {
            Err(StoreError::Conflict) if Some(n) == changed => {}
            ended => ended.unwrap_or_else(|e| panic!("p-{n}: {e}")),
        }
    }
    for n in 1..KEYED_PLAYERS {
        let gold = details_of(store, n).await.player.gold;
        if Some(n) == changed {
            assert_ne!(gold, (round * 100 + n) as i64, "p-{n}'s write applied");
        } else {
            assert_eq!(gold, (round * 100 + n) as i64, "p-{n}'s gold");
        }
        if n % 5 == 4 {
            continue;
        }
        let id = format!("p-{n}");
        let retry = store.open_turn(&id, "m", check(n), keyed(key)).await;
        let found = retry.unwrap().stored;
        let reply = format!("reply {round} {n}");
        let expected = (Some(n) != changed).then(|| stored("f", &reply)).flatten();
        assert_eq!(found, expected, "p-{n}'s retry");
    }
}

/// With `store.batch_turns = false` (what a server without `JSON_TABLE` gets too), turns at
/// once read and write each on a connection of its own, with the same outcomes: each applies
/// by its own checks, and no batch is counted.
async fn turns_unbatched_read_and_write_each_on_its_own(db: ScratchDb) {
    const PLAYERS: usize = 20;
    const ENDED: usize = 3;
    if !db.backend.is_shared() {
        return; // the setting is a server store's
    }
    let settings = host::store::server::PoolSettings {
        batch_turns: false,
        ..crate::databases::pool_settings()
    };
    let store = db.open_with(&settings).await;
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    players_with_sessions(&store, PLAYERS, PLAYERS / 2).await;
    let mut reads = tokio::task::JoinSet::new();
    for n in 0..PLAYERS {
        let store = store.clone();
        reads.spawn(async move {
            let turn = store.begin_turn(&format!("p-{n}"), "m", check(n)).await;
            (n, turn.unwrap())
        });
    }
    let turns = reads.join_all().await;
    assert!(store.end_session(&format!("h-{ENDED}")).await.unwrap());
    let mut ends = tokio::task::JoinSet::new();
    for (n, turn) in turns {
        ends.spawn(async move {
            let mut record = turn.player.clone();
            record.gold = 7 + n as i64;
            let saved = data(json!({ "w": n }));
            (n, turn.end(Some(&record), Some(&saved), 3).await)
        });
    }
    for (n, written) in ends.join_all().await {
        match n {
            ENDED => assert!(matches!(written, Err(StoreError::Conflict)), "{written:?}"),
            _ => written.unwrap_or_else(|e| panic!("p-{n}: {e}")),
        }
    }
    for n in 0..PLAYERS {
        let (gold, saved) = match n {
            ENDED => (alice().gold, Some(data(json!({ "n": n })))),
            _ => (7 + n as i64, Some(data(json!({ "w": n })))),
        };
        assert_stored(&store, n, gold, saved).await;
    }
    assert_eq!(store.batch_counts(), host::store::BatchCounts::default());
}

/// A write that the database refuses (a balance below zero breaks its CHECK) fails alone:
/// the turns writing at the same moment, batched with it or not, apply.
async fn a_write_the_database_refuses_fails_alone_among_writes_at_once(db: ScratchDb) {
    const PLAYERS: usize = 24;
    const REFUSED: usize = 11;
    let store = db.open().await;
    players_with_sessions(&store, PLAYERS, 0).await;
    let turns = turns_on(&store, PLAYERS).await;
    let mut ends = tokio::task::JoinSet::new();
    for (n, turn) in turns {
        ends.spawn(async move {
            let mut record = turn.player.clone();
            record.gold = if n == REFUSED { -1 } else { 50 + n as i64 };
            (
                n,
                turn.end(Some(&record), Some(&data(json!({ "w": n }))), 3)
                    .await,
            )
        });
    }
    for (n, written) in ends.join_all().await {
        if n == REFUSED {
            let err = written.expect_err("a negative balance is refused");
            assert!(!matches!(err, StoreError::Conflict), "{err:?}");
        } else {
            written.unwrap_or_else(|e| panic!("p-{n}: {e}"));
        }
    }
    for n in 0..PLAYERS {
        let (gold, saved) = match n {
            REFUSED => (alice().gold, None),
            _ => (50 + n as i64, Some(data(json!({ "w": n })))),
        };
        assert_stored(&store, n, gold, saved).await;
    }
}

/// A TCP relay to the database that can stop passing bytes while keeping its connections
/// open: a network that drops packets, which neither side notices.
struct Relay {
    addr: std::net::SocketAddr,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, _) = tokio::sync::watch::channel(false);
        let watch = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Relay::pass(client_read, server_write, watch.subscribe()));
                tokio::spawn(Relay::pass(server_read, client_write, watch.subscribe()));
            }
        });
        Relay { addr, frozen }
    }

    /// Copies `from` to `to`, holding what it read while the relay is frozen.
    async fn pass(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let Ok(read) = from.read(&mut buffer).await else {
                return;
            };
            if read == 0 || frozen.wait_for(|frozen| !frozen).await.is_err() {
                return;
            }
            if to.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

/// A relay to `db`'s server, and a store on `db` through it, with times short enough for a
/// test: half a second to connect, and for a statement.
async fn through_relay(db: &ScratchDb) -> (Relay, Arc<dyn Store>) {
    let mut url = url::Url::parse(&db.url).unwrap();
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let relay = Relay::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.addr.port())).unwrap();
    let parsed =
        host::store::url::DatabaseUrl::parse(url.as_str(), std::path::Path::new(".")).unwrap();
    let settings = host::store::server::PoolSettings {
        size: 8,
        connect_timeout: Duration::from_millis(500),
        statement_timeout: Duration::from_millis(500),
        batch_turns: true,
        batch_readers: 1,
        batch_writers: 1,
    };
    let store = host::store::open(&parsed, &settings, Default::default())
        .await
        .unwrap();
    (relay, store)
}

/// Each of `calls` (reads or writes on a silent database) ends as `Unavailable`. The bound is
/// far above the seconds a call may take: it only tells a hang from an answer.
async fn each_unavailable_in_time(calls: tokio::task::JoinSet<Option<StoreError>>, what: &str) {
    let answers = tokio::time::timeout(Duration::from_secs(60), calls.join_all())
        .await
        .unwrap_or_else(|_| panic!("{what} on a silent database must end"));
    for answer in answers {
        assert!(
            matches!(answer, Some(StoreError::Unavailable(_))),
            "{what}: {answer:?}"
        );
    }
}

/// Reads waiting on a database that stopped answering (packets lost, connections open) end
/// with `Unavailable` once a read's time is up, not never; once the network is back, reads
/// succeed again.
async fn reads_through_a_network_that_stops_answering_fail_in_time_and_recover(db: ScratchDb) {
    if !db.backend.is_shared() {
        return; // the embedded store has no network
    }
    let (relay, store) = through_relay(&db).await;
    store.login("alice", alice(), 0).await.unwrap();
    store
        .create_session("h-alice", ALICE, i64::MAX)
        .await
        .unwrap();
    store.begin_turn(ALICE, "m", session()).await.unwrap();

    relay.freeze(true);
    let mut turns = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        turns.spawn(async move { store.begin_turn(ALICE, "m", session()).await.err() });
    }
    each_unavailable_in_time(turns, "reads").await;

    relay.freeze(false);
    let turn = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match store.begin_turn(ALICE, "m", session()).await {
                Ok(turn) => return turn,
                Err(StoreError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("reads succeed once the database answers again");
    assert_eq!(turn.player.name, alice().name);
}

/// Writes waiting on a database that stopped answering end with `Unavailable` once a write's
/// time is up, not never; once the network is back, turns write again.
async fn writes_through_a_network_that_stops_answering_fail_in_time_and_recover(db: ScratchDb) {
    const PLAYERS: usize = 30;
    if !db.backend.is_shared() {
        return; // the embedded store has no network
    }
    let (relay, store) = through_relay(&db).await;
    players_with_sessions(&store, PLAYERS, 0).await;
    let turns = turns_on(&store, PLAYERS).await;

    relay.freeze(true);
    let mut ends = tokio::task::JoinSet::new();
    for (n, turn) in turns {
        ends.spawn(async move {
            let mut record = turn.player.clone();
            record.gold = n as i64;
            turn.end(Some(&record), None, 3).await.err()
        });
    }
    each_unavailable_in_time(ends, "writes").await;

    relay.freeze(false);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let written = async {
                let turn = store.begin_turn("p-0", "m", check(0)).await?;
                let mut record = turn.player.clone();
                record.name = "Back".into();
                turn.end(Some(&record), None, 4).await
            };
            match written.await {
                Ok(()) => return,
                Err(StoreError::Unavailable(_) | StoreError::Conflict) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("writes succeed once the database answers again");
    let details = store.player_details("p-0").await.unwrap().unwrap();
    assert_eq!(details.player.name, "Back");
}
