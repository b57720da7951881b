//! Pushes from modules to players' sockets (docs/PROTOCOL.md, "Pushes"), with the demo module
//! `social`: on SQLite (one host), and with two hosts on PostgreSQL and on MariaDB, the
//! sender's command on one host and the receiver's socket on the other.

use crate::databases::ScratchDb;
use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use crate::ws::{next, nothing_within, open_as, open_since, send, Client};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_message_reaches_its_reader_once_wherever_they_are_and_waits_while_they_are_away,
    a_refused_command_pushes_nothing,
    what_is_said_in_a_room_reaches_its_members_connected_on_every_host,
    a_gift_moves_gold_between_two_players_in_one_turn_and_is_pushed,
    gifts_both_ways_and_purchases_on_two_hosts_at_once_lose_no_gold,
);

/// How long a test waits to be sure a push does not come.
const QUIET: Duration = Duration::from_millis(600);

/// The hosts of a test: two on a server database, one (twice) on SQLite.
struct Hosts {
    one: TestHost,
    two: Option<TestHost>,
}

impl Hosts {
    async fn start(db: &ScratchDb) -> Hosts {
        let one = host_on(db, "one").await;
        let two = match db.backend.is_shared() {
            true => Some(host_on(db, "two").await),
            false => None,
        };
        Hosts { one, two }
    }

    fn other(&self) -> &TestHost {
        self.two.as_ref().unwrap_or(&self.one)
    }

    async fn stop(self) {
        self.one.stop().await;
        if let Some(two) = self.two {
            two.stop().await;
        }
    }
}

async fn host_on(db: &ScratchDb, host_id: &str) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let (url, host_id) = (db.url.clone(), host_id.to_owned());
    TestHost::start_in(dirs, move |config| {
        config.store.url = url;
        config.server.host_id = host_id;
    })
    .await
}

/// The next message, which must be a push: its kind, id and data.
async fn next_push(socket: &mut Client) -> (String, u64, Value) {
    let push = next(socket).await;
    assert!(push.get("cid").is_none(), "a push carries no cid: {push}");
    (
        push["push"]
            .as_str()
            .unwrap_or_else(|| panic!("a push: {push}"))
            .to_owned(),
        push["id"].as_u64().expect("an id"),
        push["data"].clone(),
    )
}

async fn message(host: &TestHost, token: &str, to: &str, text: &str) -> Value {
    let (_, reply) = host
        .logic(token, "1303", json!({ "to": to, "text": text }))
        .await;
    reply
}

async fn a_message_reaches_its_reader_once_wherever_they_are_and_waits_while_they_are_away(
    db: ScratchDb,
) {
    let hosts = Hosts::start(&db).await;
    let (_, alice) = hosts.other().login("alice").await;
    let (_, bob) = hosts.one.login("bob").await;

    // Bob is connected to one host; Alice's command runs on the other.
    let mut bob_socket = open_since(&hosts.one, &bob, 0).await;
    let sent = Instant::now();
    assert_eq!(
        message(hosts.other(), &alice, "bob", "hello bob").await["ret"],
        0
    );
    let (kind, first_id, data) = next_push(&mut bob_socket).await;
    eprintln!(
        "{:?}: a push from one host reached the socket on the other in {:?}",
        db.backend,
        sent.elapsed()
    );
    assert_eq!(kind, "message");
    assert_eq!(
        data,
        json!({ "from": "alice", "name": "alice", "text": "hello bob" })
    );
    // Once.
    nothing_within(&mut bob_socket, QUIET).await;

    // Away: what is sent meanwhile waits, and comes in order on reconnection, on any host.
    drop(bob_socket);
    for n in 1..=3 {
        let reply = message(hosts.other(), &alice, "bob", &format!("while away {n}")).await;
        assert_eq!(reply["ret"], 0, "{reply}");
    }
    for host in [&hosts.one, hosts.other()] {
        let mut socket = open_since(host, &bob, first_id).await;
        let mut ids = Vec::new();
        for n in 1..=3 {
            let (kind, id, data) = next_push(&mut socket).await;
            assert_eq!(
                (kind.as_str(), data["text"].clone()),
                ("message", json!(format!("while away {n}")))
            );
            ids.push(id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
        nothing_within(&mut socket, QUIET).await;
        // Resumed after the last one, nothing is sent again.
        let mut caught_up = open_since(host, &bob, ids[2]).await;
        nothing_within(&mut caught_up, QUIET).await;
    }
    // A socket that does not resume gets only what is new.
    let (mut fresh, welcome) = open_as(&hosts.one, &bob).await;
    assert_eq!(welcome["ret"], 0);
    nothing_within(&mut fresh, QUIET).await;
    assert_eq!(message(hosts.other(), &alice, "bob", "now").await["ret"], 0);
    assert_eq!(next_push(&mut fresh).await.2["text"], "now");

    let metrics = hosts.one.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("game_host_pushes_delivered_total{")
                && line.contains("kind=\"message\"")),
        "{metrics}"
    );
    hosts.stop().await;
}

async fn a_refused_command_pushes_nothing(db: ScratchDb) {
    let hosts = Hosts::start(&db).await;
    let (_, alice) = hosts.other().login("alice").await;
    let (_, bob) = hosts.one.login("bob").await;
    let mut bob_socket = open_since(&hosts.one, &bob, 0).await;
    // No such account (the module asked to refuse then), an empty text, to oneself.
    assert_eq!(
        message(hosts.other(), &alice, "nobody", "hi").await["ret"],
        2
    );
    assert_eq!(message(hosts.other(), &alice, "bob", "   ").await["ret"], 3);
    assert_eq!(message(hosts.other(), &bob, "bob", "me").await["ret"], 4);
    nothing_within(&mut bob_socket, QUIET).await;
    // Nothing was kept for later either.
    let mut resumed = open_since(&hosts.one, &bob, 0).await;
    nothing_within(&mut resumed, QUIET).await;
    hosts.stop().await;
}

async fn what_is_said_in_a_room_reaches_its_members_connected_on_every_host(db: ScratchDb) {
    let hosts = Hosts::start(&db).await;
    let (_, carol) = hosts.one.login("carol").await;
    let (_, dave) = hosts.other().login("dave").await;
    let (_, erin) = hosts.one.login("erin").await;
    for (host, token) in [(&hosts.one, &carol), (hosts.other(), &dave)] {
        let joined = host.ok(token, "1305", json!({ "room": "lobby" })).await;
        assert_eq!(joined["rooms"], json!(["lobby"]));
    }
    let mut carol_socket = open_since(&hosts.one, &carol, 0).await;
    let mut dave_socket = open_since(hosts.other(), &dave, 0).await;
    let mut erin_socket = open_since(&hosts.one, &erin, 0).await;

    // Over the socket too: a command's reply, then the push it made.
    send(
        &mut carol_socket,
        json!({ "cid": 1, "cmd": "1309", "data": { "room": "lobby", "text": "hi all" } }),
    )
    .await;
    let mut carol_got = [next(&mut carol_socket).await, next(&mut carol_socket).await];
    carol_got.sort_by_key(|m| m.get("cid").is_none());
    assert_eq!(
        (carol_got[0]["cid"].clone(), carol_got[0]["ret"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(carol_got[1]["push"], "say");
    let (kind, _, data) = next_push(&mut dave_socket).await;
    assert_eq!(kind, "say");
    assert_eq!(
        data,
        json!({ "room": "lobby", "from": "carol", "text": "hi all" })
    );
    nothing_within(&mut erin_socket, QUIET).await;

    // Dave leaves: he hears nothing more; a live push is not kept for him either.
    hosts
        .other()
        .ok(&dave, "1307", json!({ "room": "lobby" }))
        .await;
    hosts
        .one
        .ok(&carol, "1309", json!({ "room": "lobby", "text": "bye" }))
        .await;
    assert_eq!(next_push(&mut carol_socket).await.2["text"], "bye");
    nothing_within(&mut dave_socket, QUIET).await;
    drop(dave_socket);
    let mut dave_again = open_since(hosts.other(), &dave, 0).await;
    nothing_within(&mut dave_again, QUIET).await;
    // Saying in a room one is not in is refused.
    let (_, refused) = hosts
        .one
        .logic(&erin, "1309", json!({ "room": "lobby", "text": "hey" }))
        .await;
    assert_eq!(refused["ret"], 5);
    hosts.stop().await;
}

async fn gold_of(host: &TestHost, token: &str) -> i64 {
    host.ok(token, "1203", json!({})).await["gold"]
        .as_i64()
        .expect("gold")
}

async fn a_gift_moves_gold_between_two_players_in_one_turn_and_is_pushed(db: ScratchDb) {
    let hosts = Hosts::start(&db).await;
    let (_, alice) = hosts.other().login("alice").await;
    let (_, bob) = hosts.one.login("bob").await;
    let mut bob_socket = open_since(&hosts.one, &bob, 0).await;

    let given = hosts
        .other()
        .ok(&alice, "1301", json!({ "to": "bob", "gold": 300 }))
        .await;
    assert_eq!(given, json!({ "to": "bob", "gold": 700 }));
    let (kind, _, data) = next_push(&mut bob_socket).await;
    assert_eq!(
        (kind.as_str(), data),
        (
            "gift",
            json!({ "from": "alice", "name": "alice", "gold": 300 })
        )
    );
    assert_eq!(gold_of(&hosts.one, &bob).await, 1300);
    assert_eq!(gold_of(hosts.other(), &alice).await, 700);

    // Refused: nobody has the account, more than the giver owns, to oneself. Nothing moves.
    for (to, gold, ret) in [("nobody", 10, 2), ("bob", 701, 1), ("alice", 10, 4)] {
        let (_, refused) = hosts
            .other()
            .logic(&alice, "1301", json!({ "to": to, "gold": gold }))
            .await;
        assert_eq!(refused["ret"], ret, "{refused}");
    }
    assert_eq!(gold_of(hosts.other(), &alice).await, 700);
    assert_eq!(gold_of(&hosts.one, &bob).await, 1300);
    nothing_within(&mut bob_socket, QUIET).await;
    hosts.stop().await;
}

/// Gifts each way and purchases, all at once, each player's commands spread over both hosts:
/// every committed gift and purchase is in the final records, none twice.
async fn gifts_both_ways_and_purchases_on_two_hosts_at_once_lose_no_gold(db: ScratchDb) {
    const ROUNDS: usize = 20;
    let hosts = std::sync::Arc::new(Hosts::start(&db).await);
    let (_, alice) = hosts.one.login("alice").await;
    let (_, bob) = hosts.other().login("bob").await;
    let give = |from: String, to: &'static str, on_one: bool| {
        let hosts = hosts.clone();
        tokio::spawn(async move {
            let mut ok = 0;
            for round in 0..ROUNDS {
                let host = if (round % 2 == 0) == on_one {
                    &hosts.one
                } else {
                    hosts.other()
                };
                let (_, reply) = host
                    .logic(&from, "1301", json!({ "to": to, "gold": 7 }))
                    .await;
                match reply["ret"].as_i64() {
                    Some(0) => ok += 1,
                    // The other player's commands kept it busy: the client may try again.
                    Some(-6) => {}
                    _ => panic!("a gift failed: {reply}"),
                }
            }
            ok
        })
    };
    let buy = {
        let (hosts, bob) = (hosts.clone(), bob.clone());
        tokio::spawn(async move {
            let mut ok = 0;
            // Half as many as the gifts: with them all, within what Bob owns.
            for round in 0..ROUNDS / 2 {
                let host = if round % 2 == 0 {
                    hosts.other()
                } else {
                    &hosts.one
                };
                let (_, reply) = host
                    .logic(&bob, "1103", json!({ "id": "potion", "count": 1 }))
                    .await;
                match reply["ret"].as_i64() {
                    Some(0) => ok += 1,
                    Some(-6) => {}
                    _ => panic!("a purchase failed: {reply}"),
                }
            }
            ok
        })
    };
    let alice_gave = give(alice.clone(), "bob", true);
    let bob_gave = give(bob.clone(), "alice", false);
    let (alice_gave, bob_gave, bought) = (
        alice_gave.await.unwrap(),
        bob_gave.await.unwrap(),
        buy.await.unwrap(),
    );
    eprintln!(
        "{:?}: {alice_gave} and {bob_gave} of {ROUNDS} gifts, {bought} purchases committed",
        db.backend
    );
    assert!(alice_gave > 0 && bob_gave > 0 && bought > 0);
    let alice_gold = gold_of(&hosts.one, &alice).await;
    let bob_gold = gold_of(hosts.other(), &bob).await;
    assert_eq!(alice_gold, 1000 - 7 * alice_gave + 7 * bob_gave);
    assert_eq!(bob_gold, 1000 - 7 * bob_gave + 7 * alice_gave - 50 * bought);
    let bob_items = hosts.one.ok(&bob, "1203", json!({})).await["items"]["potion"].clone();
    assert_eq!(bob_items, json!(bought));
    match std::sync::Arc::try_unwrap(hosts) {
        Ok(hosts) => hosts.stop().await,
        Err(_) => panic!("every task has ended"),
    }
}
