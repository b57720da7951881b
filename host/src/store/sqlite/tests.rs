//! What only the embedded store has: its own schema history and its memory of players. The
//! behaviour every store shares is held by the contract suite (`host/tests/it/store_contract.rs`),
//! which runs on SQLite too.

use super::*;
use crate::store::{ModuleData, TurnWriter};
use std::path::PathBuf;

fn note(reason: &str) -> AuditNote {
    AuditNote {
        operator: "ops".into(),
        reason: reason.into(),
        at_ms: 7,
    }
}

#[tokio::test]
async fn a_version_1_database_gains_the_audit_log_and_keeps_its_players() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");
    {
        let conn = Connection::open(&path).unwrap();
        let v1 = SCHEMA[0].1;
        conn.execute_batch(&format!("BEGIN; {v1} PRAGMA user_version = 1; COMMIT;"))
            .unwrap();
        conn.execute(
            "INSERT INTO players VALUES ('p1', 'alice', 'Alice', '', 10, 0, '{}', 0, 0)",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let entry = store
        .grant(
            "p1",
            &Grant {
                gold: 1,
                ..Grant::default()
            },
            &note("upgrade"),
        )
        .await
        .unwrap();
    assert_eq!(entry.after["gold"], 11);
    assert_eq!(store.audit_log(None, 10).await.unwrap(), vec![entry]);
    store.close().await.unwrap();
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, super::SCHEMA_VERSION);
}

#[tokio::test]
async fn the_durability_setting_is_the_connections_synchronous_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (durability, expected) in [(Durability::Normal, 1), (Durability::Full, 2)] {
        let store = SqliteStore::open(
            &dir.path().join(format!("{expected}.db")),
            SqliteOptions {
                durability,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        let synchronous = store
            .with_conn(|conn| {
                conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))
                    .map_err(db_error)
            })
            .await
            .unwrap();
        assert_eq!(synchronous, expected, "{durability:?}");
    }
}

/// A store on a new file with one player, `p1`, of 10 gold.
async fn store_with_a_player(dir: &Path, cache_players: usize) -> (SqliteStore, PathBuf) {
    let path = dir.join("game.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            cache_players,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let mut player = Player::new("p1", "Alice", "");
    player.gold = 10;
    store.login("alice", player, 0).await.unwrap();
    (store, path)
}

/// The gold and the mall's `visits` that a turn of `p1` reads.
async fn turn_reads(store: &SqliteStore) -> (i64, Option<i64>) {
    let session = SessionCheck {
        token_hash: "",
        now_ms: 0,
    };
    let turn = store.begin_turn("p1", "mall", session).await.unwrap();
    let read = (
        turn.player.gold,
        turn.module_data.get("visits").and_then(|v| v.as_i64()),
    );
    turn.end(None, None, 0).await.unwrap();
    read
}

/// A turn of `p1` that sets its gold and the mall's `visits`.
async fn turn_writes(store: &SqliteStore, gold: i64, visits: i64) {
    let session = SessionCheck {
        token_hash: "",
        now_ms: 0,
    };
    let turn = store.begin_turn("p1", "mall", session).await.unwrap();
    let mut player = turn.player.clone();
    player.gold = gold;
    let mut data = turn.module_data.clone();
    data.insert("visits".into(), visits.into());
    turn.end(Some(&player), Some(&data), 1).await.unwrap();
}

/// What another process would do to the file: set `p1`'s gold and `visits`.
fn write_behind_its_back(path: &Path, gold: i64, visits: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute(
        "UPDATE players SET gold = ?1 WHERE player_id = 'p1'",
        [gold],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO module_data VALUES ('p1', 'mall', ?1)
         ON CONFLICT (player_id, module) DO UPDATE SET data = excluded.data",
        [format!(r#"{{"visits":{visits}}}"#)],
    )
    .unwrap();
}

#[tokio::test]
async fn turns_read_memory_while_the_host_is_the_sole_user_and_the_file_while_it_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_a_player(dir.path(), 100).await;
    assert!(store.caching());
    assert_eq!(turn_reads(&store).await, (10, None));
    turn_writes(&store, 7, 1).await;
    assert_eq!(
        turn_reads(&store).await,
        (7, Some(1)),
        "what the turn wrote"
    );

    // Only this host writes the file while it is its sole user: turns answer from memory.
    // (A write behind its back is what a restart's other host could do; it is not seen.)
    write_behind_its_back(&path, 99, 9);
    assert_eq!(turn_reads(&store).await, (7, Some(1)));

    // While shared (a restart), every turn reads the file: the other host's writes count.
    store.set_sole_user(false).await;
    assert!(!store.caching());
    assert_eq!(turn_reads(&store).await, (99, Some(9)));
    turn_writes(&store, 50, 5).await;
    write_behind_its_back(&path, 60, 6);
    assert_eq!(turn_reads(&store).await, (60, Some(6)));

    // Sole user again (the other host has exited): memory starts from the file.
    store.set_sole_user(true).await;
    assert_eq!(turn_reads(&store).await, (60, Some(6)));
    turn_writes(&store, 61, 7).await;
    assert_eq!(turn_reads(&store).await, (61, Some(7)));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_grant_reaches_the_next_turn_of_a_player_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _path) = store_with_a_player(dir.path(), 100).await;
    turn_writes(&store, 20, 1).await;
    let grant = Grant {
        gold: 5,
        ..Grant::default()
    };
    store.grant("p1", &grant, &note("gift")).await.unwrap();
    assert_eq!(turn_reads(&store).await, (25, Some(1)));
    // A refused grant changes nothing.
    let too_much = Grant {
        gold: -1000,
        ..Grant::default()
    };
    assert!(store.grant("p1", &too_much, &note("fine")).await.is_err());
    assert_eq!(turn_reads(&store).await, (25, Some(1)));
    store.close().await.unwrap();
}

#[tokio::test]
async fn with_no_players_in_memory_every_turn_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_a_player(dir.path(), 0).await;
    assert!(!store.caching());
    turn_writes(&store, 7, 1).await;
    write_behind_its_back(&path, 99, 9);
    assert_eq!(turn_reads(&store).await, (99, Some(9)));
    store.close().await.unwrap();
}

#[tokio::test]
async fn players_past_the_capacity_are_read_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_a_player(dir.path(), 1).await;
    turn_writes(&store, 7, 1).await;
    // Fill the one place with other players, many times over.
    for n in 0..50 {
        let id = format!("q{n}");
        let player = Player::new(id.clone(), "Q", "");
        store.login(&id, player, 0).await.unwrap();
        let session = SessionCheck {
            token_hash: "",
            now_ms: 0,
        };
        let turn = store.begin_turn(&id, "mall", session).await.unwrap();
        turn.end(None, None, 0).await.unwrap();
    }
    write_behind_its_back(&path, 99, 9);
    assert_eq!(turn_reads(&store).await, (99, Some(9)), "p1 was dropped");
    store.close().await.unwrap();
}

/// Ends a turn of `player_id` that sets its gold and the mall's `visits` to `n`, without
/// reading it first (so that a player who does not exist can be written too).
async fn end_turn(store: &SqliteStore, player_id: &str, n: i64) -> Result<(), StoreError> {
    let writer = Box::new(SqliteTurn {
        store: store.clone(),
        player_id: player_id.into(),
        module: "mall".into(),
        key: None,
    });
    let mut player = Player::new(player_id, "Q", "");
    player.gold = n;
    let mut data = ModuleData::new();
    data.insert("visits".into(), n.into());
    writer
        .end(
            Some(&player),
            Some(&data),
            &crate::store::TurnEffects::default(),
            None,
            1,
        )
        .await
}

/// Ends the turns of `players` while the database thread is held, so that all of them are
/// queued before it takes the first; returns each result and how much the log grew.
async fn end_turns_queued_together(
    store: &SqliteStore,
    path: &Path,
    players: &[String],
) -> (Vec<Result<(), StoreError>>, u64) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_before = std::fs::metadata(&wal).unwrap().len();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (holding, in_slot) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .with_slot(move |_| {
                    let _ = holding.send(());
                    held.recv().unwrap();
                    Ok(())
                })
                .await
        }
    });
    // The turns are queued only once the holder has the slot: queued before it, some would be
    // taken with it, and the queue would never hold them all.
    in_slot.await.unwrap();
    let turns: Vec<_> = players
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { end_turn(&store, &id, n as i64 + 100).await })
        })
        .collect();
    while store.jobs.len() < players.len() {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let mut results = Vec::new();
    for turn in turns {
        results.push(turn.await.unwrap());
    }
    let wal_after = std::fs::metadata(&wal).unwrap().len();
    (results, wal_after - wal_before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_queued_together_commit_together_and_a_failing_one_is_undone_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_a_player(dir.path(), DEFAULT_CACHE_PLAYERS).await;
    let players: Vec<String> = (0..9).map(|n| format!("q{n}")).collect();
    for id in &players {
        store
            .login(id, Player::new(id.clone(), "Q", ""), 0)
            .await
            .unwrap();
    }

    // One at a time: a transaction each.
    let mut one_by_one = 0;
    for id in &players {
        let (results, grew) =
            end_turns_queued_together(&store, &path, std::slice::from_ref(id)).await;
        results.into_iter().for_each(|r| r.unwrap());
        one_by_one += grew;
    }

    // Together, with a turn of a player that does not exist among them: its module data
    // breaks the foreign key, so that turn fails, and only that one.
    let mut with_ghost = players.clone();
    with_ghost.insert(4, "ghost".into());
    let (results, together) = end_turns_queued_together(&store, &path, &with_ghost).await;
    for (id, result) in with_ghost.iter().zip(&results) {
        assert_eq!(result.is_ok(), id != "ghost", "{id}: {result:?}");
    }
    assert!(
        together * 3 < one_by_one,
        "queued together, the turns were not committed together: the log grew by {together} \
         bytes, against {one_by_one} for the same turns one at a time"
    );

    // The file has every committed turn, and nothing of the failed one.
    let conn = Connection::open(&path).unwrap();
    for (n, id) in with_ghost.iter().enumerate() {
        let gold: Option<i64> = conn
            .query_row(
                "SELECT gold FROM players WHERE player_id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .unwrap();
        let data: Option<String> = conn
            .query_row(
                "SELECT data FROM module_data WHERE player_id = ?1 AND module = 'mall'",
                [id],
                |row| row.get(0),
            )
            .optional()
            .unwrap();
        if id == "ghost" {
            assert_eq!((gold, data), (None, None));
        } else {
            let n = n as i64 + 100;
            assert_eq!(gold, Some(n), "{id}");
            assert_eq!(data, Some(format!(r#"{{"visits":{n}}}"#)), "{id}");
        }
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_after_a_dropped_request_reads_the_write_that_request_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _path) = store_with_a_player(dir.path(), DEFAULT_CACHE_PLAYERS).await;
    turn_writes(&store, 7, 1).await;
    assert_eq!(turn_reads(&store).await, (7, Some(1)), "p1 is in memory");

    // Hold the database thread, queue a turn's write, then drop the request that waits for
    // it (a client that hung up): its write still runs, later.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, holding) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .with_slot(move |_| {
                    started.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
                .await
        }
    });
    while holding.try_recv().is_err() {
        tokio::task::yield_now().await;
    }
    let dropped = tokio::spawn({
        let store = store.clone();
        async move { turn_writes(&store, 8, 2).await }
    });
    while store.jobs.is_empty() {
        tokio::task::yield_now().await;
    }
    dropped.abort();
    let _ = dropped.await;

    // The next turn must not answer from memory before that write: it reads behind it.
    let next = tokio::spawn({
        let store = store.clone();
        async move { turn_reads(&store).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !next.is_finished(),
        "the turn answered from memory before the queued write"
    );
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(next.await.unwrap(), (8, Some(2)));
    // Once written, the player is read from memory again.
    assert_eq!(turn_reads(&store).await, (8, Some(2)));
    store.close().await.unwrap();
}
