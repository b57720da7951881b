//! Cancellation is input too: a client may hang up at any await point of its request, and the
//! future serving it is then dropped wherever it was. Nothing may be left behind: no
//! transaction open on a pooled connection, no player lock held, no turn half applied.
//!
//! Two levels, on SQLite, PostgreSQL and MariaDB:
//! - the store on its own: its calls dropped after a random few microseconds, at once from
//!   many tasks;
//! - the real host under load, its clients hanging up at random moments (right after sending,
//!   during the turn, during the reply), then 200 new players who must all be served, and
//!   every player's gold and items conserved;
//! - the same over sockets: purchases and gifts (a turn that changes two players) sent over
//!   sockets that are dropped at random moments, then the gold of all players conserved.

use crate::databases::ScratchDb;
use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use host::store::server::PoolSettings;
use host::store::{AuditNote, Grant, SessionCheck, Store};
use plugin_api::{Player, STARTING_GOLD};
use rand::Rng;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::hangup::{self, HangUp};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    store_calls_dropped_midway_leave_no_transaction_open,
    clients_that_hang_up_under_load_leave_nothing_behind,
    sockets_that_hang_up_under_load_leave_nothing_behind,
);

/// Players of the store-level case.
const PLAYERS: usize = 8;

/// Rounds of dropped calls in the store-level case.
const ROUNDS: u64 = 80;

/// How long a transaction that is being rolled back or committed may take to end. It is
/// usually milliseconds, but the pool rolls a dropped transaction back only once its
/// connection is back, and the database server can stall for seconds (another test's
/// `DROP DATABASE`, a loaded CI machine). A transaction left behind never ends.
const SETTLE: Duration = Duration::from_secs(60);

/// The statement timeout of these tests' stores, well past [`SETTLE`]: PostgreSQL ends a
/// transaction idle for that long by itself (`idle_in_transaction_session_timeout`), which
/// would hide one left behind.
const PATIENT: Duration = Duration::from_secs(300);

/// A store on `db` as a host opens it, with [`PATIENT`] timeouts.
async fn open_patient(db: &ScratchDb) -> Arc<dyn Store> {
    let settings = PoolSettings {
        statement_timeout: PATIENT,
        ..crate::databases::pool_settings()
    };
    db.open_with(&settings).await
}

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
    let store = open_patient(&db).await;
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
        let open = db.open_transactions_after(SETTLE).await;
        assert!(
            open.is_empty(),
            "round {round}: calls dropped after {micros} µs left connections inside a transaction: {open:?}"
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
    let open = db.open_transactions_after(SETTLE).await;
    assert!(
        open.is_empty(),
        "connections left inside a transaction after the logins: {open:?}"
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

/// Players buying in the host-level case, and how long its clients hang up for.
const BUYERS: usize = 60;
const LOAD_FOR: Duration = Duration::from_secs(3);
const CLIENTS: usize = 48;
/// A potion, as the mall sells it; an operator's grant in this test.
const POTION: i64 = 50;
const GRANT: i64 = 50;

/// What the clients that read their replies were told.
#[derive(Default)]
struct Told {
    /// Purchases answered `ret: 0`, per buyer.
    bought: Vec<AtomicU64>,
    /// Replies that should not have come: anything but a sale or "not enough gold" to a
    /// purchase, a failed login, a 5xx.
    wrong: Mutex<Vec<String>>,
    sent: AtomicU64,
}

async fn clients_that_hang_up_under_load_leave_nothing_behind(db: ScratchDb) {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let url = db.url.clone();
    let host = TestHost::start_in(dirs, move |config| {
        config.store.url = url;
        config.store.statement_timeout_ms = PATIENT.as_millis() as u64;
    })
    .await;
    let mut buyers = Vec::new();
    for b in 0..BUYERS {
        buyers.push(host.login(&format!("buyer-{b}")).await);
    }
    let buyers = Arc::new(buyers);
    let told = Arc::new(Told {
        bought: (0..BUYERS).map(|_| AtomicU64::new(0)).collect(),
        ..Told::default()
    });

    // Purchases, operator grants, reads and logins of new accounts from 48 clients at once,
    // each on a connection of its own, most closed early: right after sending, during the
    // turn (up to 3 ms in), or as the reply arrives.
    let end = Instant::now() + LOAD_FOR;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (buyers, told) = (buyers.clone(), told.clone());
            let (addr, admin) = (host.addr, host.admin_addr);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    n += 1;
                    let (b, kind, random) = {
                        let mut rng = rand::thread_rng();
                        (
                            rng.gen_range(0..BUYERS),
                            rng.gen_range(0..10),
                            rng.gen::<u64>(),
                        )
                    };
                    let hang_up = HangUp::pick(random, Duration::from_millis(3));
                    let (player_id, token) = &buyers[b];
                    let sent = match kind {
                        0..=5 => {
                            let buy = r#"{"cmd":"1103","data":{"id":"potion","count":1}}"#;
                            hangup::post(addr, "/logic", Some(token), buy, hang_up).await
                        }
                        6 | 7 => {
                            let grant =
                                json!({ "operator": "ops", "reason": "hang-ups", "gold": GRANT });
                            let path = format!("/admin/players/{player_id}/grant");
                            hangup::post(admin, &path, None, &grant.to_string(), hang_up).await
                        }
                        8 => {
                            hangup::post(addr, "/logic", Some(token), r#"{"cmd":"1203"}"#, hang_up)
                                .await
                        }
                        _ => {
                            let login = json!({ "account": format!("walk-in-{c}-{n}") });
                            hangup::post(addr, "/login", None, &login.to_string(), hang_up).await
                        }
                    };
                    told.sent.fetch_add(1, Ordering::Relaxed);
                    let Ok(Some(reply)) = sent else { continue };
                    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                    let ret = body["ret"].as_i64();
                    match (kind, reply.status, ret) {
                        (0..=5, 200, Some(0)) => {
                            told.bought[b].fetch_add(1, Ordering::Relaxed);
                        }
                        // Not enough gold: the buyer spent it all.
                        (0..=5, 200, Some(1)) | (6.., 200, Some(0)) => {}
                        _ => told
                            .wrong
                            .lock()
                            .unwrap()
                            .push(format!("kind {kind}: {} {}", reply.status, reply.body)),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let wrong = told.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "{} wrong replies, the first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // The requests whose clients hung up run on to their end.
    for _ in 0..400 {
        if host.state.requests.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        host.state.requests.is_empty(),
        "requests still running 10 s after the load"
    );
    assert!(host.state.player_locks.is_empty(), "player locks left held");
    let open = db.open_transactions_after(SETTLE).await;
    if !open.is_empty() {
        let failed: Vec<String> = host
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("game_host_requests_total") && !l.contains(r#"ret="0""#))
            .map(str::to_owned)
            .collect();
        panic!(
            "the host's connections left inside a transaction: {open:?}; requests that failed: {failed:?}"
        );
    }

    // 200 new players, 20 at a time, each logged in and served their first command.
    for batch in 0..10 {
        let firsts = (0..20).map(|i| {
            let host = &host;
            async move {
                let account = format!("after-{batch}-{i}");
                let (status, login) = host
                    .post("/login", &json!({ "account": account }), None)
                    .await;
                assert_eq!(
                    (status, login["ret"].as_i64()),
                    (200, Some(0)),
                    "login of {account}: {login}"
                );
                let token = login["token"].as_str().unwrap();
                let record = host.ok(token, "1203", json!({})).await;
                assert_eq!(
                    record["gold"].as_i64(),
                    Some(STARTING_GOLD),
                    "{account}: {record}"
                );
            }
        });
        futures::future::join_all(firsts).await;
    }

    // Gold and items are conserved: each buyer's gold and potions add up to what they started
    // with plus what the operators granted (each applied grant has its audit row, written in
    // the same transaction), and every purchase a client was told of is there.
    for (b, (player_id, token)) in buyers.iter().enumerate() {
        let record = host.ok(token, "1203", json!({})).await;
        let (_, audit) = host
            .admin(
                reqwest::Method::GET,
                &format!("/admin/audit?player_id={player_id}&limit=1000"),
                None,
            )
            .await;
        let grants = audit["entries"].as_array().expect("audit entries").len() as i64;
        let gold = record["gold"].as_i64().unwrap();
        let potions = record["items"]["potion"].as_i64().unwrap_or(0);
        assert_eq!(
            gold + POTION * potions,
            STARTING_GOLD + GRANT * grants,
            "buyer {b}: {potions} potions, {grants} grants: {record}"
        );
        let told_bought = told.bought[b].load(Ordering::Relaxed) as i64;
        assert!(
            potions >= told_bought,
            "buyer {b} was told of {told_bought} purchases and has {potions} potions"
        );
    }
    let open = db.open_transactions_after(SETTLE).await;
    assert!(
        open.is_empty(),
        "left inside a transaction at the end: {open:?}"
    );
    assert!(
        told.sent.load(Ordering::Relaxed) > 500,
        "too little load to mean anything: {}",
        told.sent.load(Ordering::Relaxed)
    );
}

/// Players of the socket case, who buy and give each other gold.
const SOCKET_PLAYERS: usize = 16;
const SOCKET_CLIENTS: usize = 24;
/// Commands running at once (their sockets gone or not) past which the clients wait.
const MAX_RUNNING: usize = 64;

async fn sockets_that_hang_up_under_load_leave_nothing_behind(db: ScratchDb) {
    use crate::ws::{open_as, send};
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let url = db.url.clone();
    let host = TestHost::start_in(dirs, move |config| {
        config.store.url = url;
        config.store.statement_timeout_ms = PATIENT.as_millis() as u64;
        config.socket.commands_per_sec = 1_000_000;
        config.socket.command_burst = 1_000_000;
    })
    .await;
    let mut players = Vec::new();
    for p in 0..SOCKET_PLAYERS {
        players.push(host.login(&format!("sock-{p}")).await.1);
    }
    let (players, host) = (Arc::new(players), Arc::new(host));

    // Each client opens a socket as a random player, sends a few purchases and gifts at once,
    // then drops the connection (no close frame) at once, after a moment, or after a reply.
    let end = Instant::now() + LOAD_FOR;
    let clients: Vec<_> = (0..SOCKET_CLIENTS)
        .map(|_| {
            let (players, host) = (players.clone(), host.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    // Commands outlive their sockets: without waiting for them, the clients
                    // would pile up more than a loaded machine runs in seconds.
                    while host.state.requests.len() > MAX_RUNNING {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    let (who, commands, wait, read) = {
                        let mut rng = rand::thread_rng();
                        let commands: Vec<Value> = (0..rng.gen_range(1..6))
                            .map(|cid| match rng.gen_range(0..3) {
                                0 => json!({ "cid": cid, "cmd": "1103", "data": { "id": "potion", "count": 1 } }),
                                _ => {
                                    let to = format!("sock-{}", rng.gen_range(0..SOCKET_PLAYERS));
                                    json!({ "cid": cid, "cmd": "1301", "data": { "to": to, "gold": rng.gen_range(1..40) } })
                                }
                            })
                            .collect();
                        (
                            rng.gen_range(0..SOCKET_PLAYERS),
                            commands,
                            Duration::from_micros(rng.gen_range(0..3000)),
                            rng.gen_bool(0.3),
                        )
                    };
                    let (mut socket, _) = open_as(&host, &players[who]).await;
                    for command in commands {
                        send(&mut socket, command).await;
                    }
                    if read {
                        let _ = tokio::time::timeout(Duration::from_millis(50), crate::ws::next(&mut socket)).await;
                    } else {
                        tokio::time::sleep(wait).await;
                    }
                    drop(socket);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }

    // The commands whose sockets went run on to their end; nothing is left open or held.
    for _ in 0..400 {
        if host.state.requests.is_empty() && host.state.websockets.open() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        host.state.requests.is_empty(),
        "commands still running 10 s after the load"
    );
    assert_eq!(host.state.websockets.open(), 0, "sockets still open");
    assert!(host.state.player_locks.is_empty(), "player locks left held");
    let open = db.open_transactions_after(SETTLE).await;
    assert!(
        open.is_empty(),
        "the host's connections left inside a transaction: {open:?}"
    );

    // No turn half applied: gifts move gold between players, purchases turn it into potions,
    // and all of it adds up to what the players started with.
    let mut total = 0;
    for token in players.iter() {
        let record = host.ok(token, "1203", json!({})).await;
        total += record["gold"].as_i64().unwrap()
            + POTION * record["items"]["potion"].as_i64().unwrap_or(0);
    }
    assert_eq!(total, STARTING_GOLD * SOCKET_PLAYERS as i64);
    let metrics = host.metrics().await;
    let committed = |cmd: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "game_host_requests_total{{endpoint=\"ws\",cmd=\"{cmd}\",ret=\"0\"}}"
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    eprintln!(
        "{:?}: {} purchases and {} gifts committed over sockets dropped at random",
        db.backend,
        committed("1103"),
        committed("1301")
    );
    assert!(committed("1103") > 0 && committed("1301") > 0);
    match Arc::try_unwrap(host) {
        Ok(host) => {
            host.stop().await;
        }
        Err(_) => panic!("every client has ended"),
    }
}
