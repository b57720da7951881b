//! Cancellation is input too: a client may hang up at any await point of its request, and the
//! future serving it is then dropped wherever it was. Nothing may be left behind: no
//! transaction open on a pooled connection, no player lock held, no turn half applied.
//!
//! Two levels, on SQLite, PostgreSQL and MariaDB:
//! - the store on its own: its calls dropped after a random few microseconds, at once from
//!   many tasks;
//! - the real host under load, its clients hanging up at random moments (right after sending,
//!   during the turn, during the reply), then 200 new players who must all be served, and
//!   every player's gold and items conserved.

use crate::databases::ScratchDb;
use host::store::{AuditNote, Grant, SessionCheck, Store};
use plugin_api::Player;
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    store_calls_dropped_midway_leave_no_transaction_open,
);

/// Players of the store-level case.
const PLAYERS: usize = 8;

/// Rounds of dropped calls in the store-level case.
const ROUNDS: u64 = 80;

fn player_id(i: usize) -> String {
    format!("p-{i}")
}

fn session_of(i: usize) -> String {
    format!("h-{i}")
}

/// One store call of the kinds a request makes, each with a write: a turn, an operator's
/// grant, the login of a new account with its session.
async fn one_store_call(store: &Arc<dyn Store>, kind: u32, i: usize, n: u64) {
    let id = player_id(i);
    match kind {
        0 => {
            let hash = session_of(i);
            let check = SessionCheck {
                token_hash: &hash,
                now_ms: 1,
            };
            if let Ok(turn) = store.begin_turn(&id, "m", check).await {
                let data = json!({ "n": n });
                let _ = turn.end(None, Some(data.as_object().unwrap()), 2).await;
            }
        }
        1 => {
            let grant = Grant {
                gold: 1,
                ..Grant::default()
            };
            let note = AuditNote {
                operator: "ops".into(),
                reason: "hang-up test".into(),
                at_ms: 3,
            };
            let _ = store.grant(&id, &grant, &note).await;
        }
        _ => {
            let account = format!("drop-{i}-{n}");
            let new = Player::new(format!("p-{account}"), account.clone(), "");
            if let Ok(player) = store.login(&account, new, 4).await {
                let _ = store
                    .create_session(&format!("h-{account}"), &player.player_id, i64::MAX)
                    .await;
            }
        }
    }
}

async fn store_calls_dropped_midway_leave_no_transaction_open(db: ScratchDb) {
    let store = db.open().await;
    for i in 0..PLAYERS {
        let new = Player::new(player_id(i), format!("player {i}"), "");
        store.login(&format!("a-{i}"), new, 0).await.unwrap();
        store
            .create_session(&session_of(i), &player_id(i), i64::MAX)
            .await
            .unwrap();
    }
    // Rounds of 16 calls at once, all dropped at the same moment, as a load generator or a
    // crowd of phones drops its connections: a random 0 to 3 ms in, so that across rounds the
    // drops land before, inside and after each statement, BEGIN and COMMIT included. A
    // transaction that a drop leaves behind stays open; one rolled back as it should be is
    // gone within milliseconds.
    for round in 0..ROUNDS {
        let micros = rand::thread_rng().gen_range(0..3000);
        let calls: Vec<_> = (0..16u64)
            .map(|n| {
                let store = store.clone();
                let (kind, i) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen_range(0..3), rng.gen_range(0..PLAYERS))
                };
                tokio::spawn(async move {
                    let call = one_store_call(&store, kind, i, round * 16 + n);
                    let _ = tokio::time::timeout(Duration::from_micros(micros), call).await;
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        // A probe of 16 logins at once takes every pooled connection: one left inside a
        // transaction runs an insert in it (InnoDB lists a transaction only from its first
        // statement on), and the login's read on another connection misses that insert.
        let probes: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let account = format!("probe-{round}-{n}");
                    let new = Player::new(format!("p-{account}"), account.clone(), "");
                    store.login(&account, new, 4).await
                })
            })
            .collect();
        for probe in probes {
            if let Err(e) = probe.await.unwrap() {
                panic!("round {round}: a login after calls dropped at {micros} µs failed: {e}");
            }
        }
        let open = db.open_transactions_after(Duration::from_secs(1)).await;
        assert_eq!(
            open, 0,
            "round {round}: calls dropped after {micros} µs left connections inside a transaction"
        );
    }

    // Every connection of the pool is usable as it should be: 100 new accounts log in (a
    // login's insert and its read run on pooled connections of their own; a connection left
    // inside a transaction would hide the insert from the read) and each plays a turn.
    for n in 0..100 {
        let account = format!("after-{n}");
        let new = Player::new(format!("p-{account}"), account.clone(), "");
        let player = store
            .login(&account, new, 5)
            .await
            .unwrap_or_else(|e| panic!("login {n} after the hang-ups: {e}"));
        let hash = format!("h-{account}");
        store
            .create_session(&hash, &player.player_id, i64::MAX)
            .await
            .unwrap();
        let check = SessionCheck {
            token_hash: &hash,
            now_ms: 6,
        };
        let turn = store
            .begin_turn(&player.player_id, "m", check)
            .await
            .unwrap_or_else(|e| panic!("turn {n} after the hang-ups: {e}"));
        let mut richer = turn.player.clone();
        richer.gold += 1;
        turn.end(Some(&richer), None, 7).await.unwrap();
    }
    assert_eq!(
        db.open_transactions_after(Duration::from_secs(3)).await,
        0,
        "connections left inside a transaction after the logins"
    );
    // Each player is free: a turn of every one of them starts at once.
    for i in 0..PLAYERS {
        let hash = session_of(i);
        let check = SessionCheck {
            token_hash: &hash,
            now_ms: 8,
        };
        let turn = tokio::time::timeout(
            Duration::from_secs(5),
            store.begin_turn(&player_id(i), "m", check),
        )
        .await
        .unwrap_or_else(|_| panic!("player {i} is still locked"))
        .unwrap();
        turn.end(None, None, 9).await.unwrap();
    }
}
