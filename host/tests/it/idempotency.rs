//! Safe retries (`Idempotency-Key`, docs/PROTOCOL.md): a keyed command that wrote is answered
//! again from its stored reply, never run twice, on SQLite, PostgreSQL and MariaDB, and across
//! two hosts on one server database; another body under the same key is refused; reads and
//! refusals store nothing; a key older than 24 h counts for nothing.

use crate::databases::ScratchDb;
use crate::fleet::host_on;
use crate::harness::{TestHost, DAY_MS};
use host::clock::Clock;
use serde_json::{json, Value};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    the_same_key_twice_buys_once_and_replays_the_first_reply,
    the_same_key_with_another_body_is_refused_and_writes_nothing,
    a_malformed_key_is_refused_and_no_key_runs_every_time,
    keys_are_per_player,
    keyed_reads_and_refusals_store_nothing,
    a_key_older_than_24_hours_is_ignored_then_swept,
    // Two hosts: PostgreSQL and MariaDB only (a SQLite file serves one host).
    a_retry_on_another_host_replays_the_first_hosts_reply,
    a_retry_racing_its_first_attempt_on_another_host_buys_once,
);

const POTION: &str = r#"{"cmd":"1103","data":{"id":"potion","count":1}}"#;

/// A `POST /logic` reply: status, body, and whether it was marked replayed.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

/// Sends `body` to `/logic` with `key` (raw bytes, so that a test can send any header).
async fn keyed(host: &TestHost, token: &str, key: Option<&[u8]>, body: &str) -> Answer {
    let mut request = reqwest::Client::new()
        .post(host.url("/logic"))
        .bearer_auth(token)
        .body(body.to_owned());
    if let Some(key) = key {
        let value = reqwest::header::HeaderValue::from_bytes(key).expect("a header value");
        request = request.header("Idempotency-Key", value);
    }
    let response = request.send().await.expect("the host answers");
    let status = response.status().as_u16();
    let replayed = match response.headers().get("idempotent-replayed") {
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
        None => false,
    };
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Answer {
        status,
        body,
        replayed,
    }
}

/// The player's gold and potions, read without a key.
async fn gold_and_potions(host: &TestHost, token: &str) -> (i64, i64) {
    let record = host.ok(token, "1203", json!({})).await;
    (
        record["gold"].as_i64().unwrap(),
        record["items"]["potion"].as_i64().unwrap_or(0),
    )
}

fn assert_ok(answer: &Answer) {
    assert_eq!(
        (answer.status, answer.body["ret"].as_i64()),
        (200, Some(0)),
        "{answer:?}"
    );
}

async fn the_same_key_twice_buys_once_and_replays_the_first_reply(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, token) = host.login("alice").await;
    let key = Some(b"6f1c8e0a-3b7d-4c55-9f0e-2d4b8a1c7e93".as_slice());
    let first = keyed(&host, &token, key, POTION).await;
    assert_ok(&first);
    assert!(!first.replayed, "{first:?}");
    assert_eq!(
        first.body["data"],
        json!({ "gold": 950, "items": { "potion": 1 } })
    );
    // The same request again, its keys in another order: the same request.
    let again = r#"{"data":{"count":1,"id":"potion"},"cmd":"1103"}"#;
    let second = keyed(&host, &token, key, again).await;
    assert_ok(&second);
    assert!(second.replayed, "{second:?}");
    assert_eq!(second.body, first.body, "the first reply, word for word");
    assert_eq!(
        gold_and_potions(&host, &token).await,
        (950, 1),
        "bought once"
    );
    // And a third time: still the first reply.
    let third = keyed(&host, &token, key, POTION).await;
    assert!(third.replayed && third.body == first.body, "{third:?}");
}

async fn the_same_key_with_another_body_is_refused_and_writes_nothing(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, token) = host.login("bob").await;
    let key = Some(b"k-1".as_slice());
    assert_ok(&keyed(&host, &token, key, POTION).await);
    let two = r#"{"cmd":"1103","data":{"id":"potion","count":2}}"#;
    let refused = keyed(&host, &token, key, two).await;
    assert_eq!(
        (refused.status, refused.body["ret"].as_i64()),
        (400, Some(-2)),
        "{refused:?}"
    );
    assert_eq!(
        refused.body["msg"],
        "this Idempotency-Key was used for another request of this player: send a new key for a new request"
    );
    assert_eq!(
        refused.body["cmd"], "1104",
        "the command was read: {refused:?}"
    );
    // Another command under the key is another request too.
    let other = keyed(&host, &token, key, r#"{"cmd":"1001"}"#).await;
    assert_eq!(other.body["ret"], -2, "{other:?}");
    assert_eq!(
        gold_and_potions(&host, &token).await,
        (950, 1),
        "nothing written"
    );
}

async fn a_malformed_key_is_refused_and_no_key_runs_every_time(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, token) = host.login("carol").await;
    let long = vec![b'k'; 256];
    for bad in [b"".as_slice(), b"a b", b"caf\xc3\xa9", &long] {
        let refused = keyed(&host, &token, Some(bad), POTION).await;
        assert_eq!(
            (refused.status, refused.body["ret"].as_i64()),
            (400, Some(-2)),
            "{refused:?}"
        );
        let msg = refused.body["msg"].as_str().unwrap();
        assert!(msg.contains("1 to 255 printable ASCII characters"), "{msg}");
    }
    assert_eq!(
        gold_and_potions(&host, &token).await,
        (1000, 0),
        "nothing run"
    );
    // No key: v1 as it was, each request a purchase.
    for _ in 0..2 {
        let bought = keyed(&host, &token, None, POTION).await;
        assert_ok(&bought);
        assert!(!bought.replayed);
    }
    assert_eq!(gold_and_potions(&host, &token).await, (900, 2));
    let longest = vec![b'~'; 255];
    assert_ok(&keyed(&host, &token, Some(&longest), POTION).await);
}

async fn keys_are_per_player(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, alice) = host.login("alice").await;
    let (_, bob) = host.login("bob").await;
    let key = Some(b"shared-key".as_slice());
    assert_ok(&keyed(&host, &alice, key, POTION).await);
    let two = r#"{"cmd":"1103","data":{"id":"potion","count":2}}"#;
    let bobs = keyed(&host, &bob, key, two).await;
    assert_ok(&bobs);
    assert!(!bobs.replayed, "Bob's key is his own: {bobs:?}");
    assert_eq!(gold_and_potions(&host, &alice).await, (950, 1));
    assert_eq!(gold_and_potions(&host, &bob).await, (900, 2));
}

async fn keyed_reads_and_refusals_store_nothing(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, token) = host.login("dave").await;
    let read = Some(b"read-key".as_slice());
    let first = keyed(&host, &token, read, r#"{"cmd":"1203"}"#).await;
    assert_ok(&first);
    assert_eq!(first.body["data"]["gold"], 1000);
    host.ok(&token, "1103", json!({ "id": "potion", "count": 1 }))
        .await;
    // A read stored nothing: run again, it answers the state of now.
    let second = keyed(&host, &token, read, r#"{"cmd":"1203"}"#).await;
    assert!(!second.replayed, "{second:?}");
    assert_eq!(second.body["data"]["gold"], 950);
    // A refusal (ret > 0) stored nothing either: once the player can pay, the same key buys.
    let refused_key = Some(b"too-dear".as_slice());
    let dear = r#"{"cmd":"1103","data":{"id":"potion","count":99}}"#;
    let refused = keyed(&host, &token, refused_key, dear).await;
    assert_eq!(refused.body["ret"], 1, "not enough gold: {refused:?}");
    let again = keyed(&host, &token, refused_key, dear).await;
    assert!(!again.replayed && again.body["ret"] == 1, "{again:?}");
    // The read's key holds nothing either: a new request under it runs.
    assert_ok(&keyed(&host, &token, read, POTION).await);
}

async fn a_key_older_than_24_hours_is_ignored_then_swept(db: ScratchDb) {
    let host = host_on(&db, "a").await;
    let (_, token) = host.login("erin").await;
    let key = Some(b"old-key".as_slice());
    assert_ok(&keyed(&host, &token, key, POTION).await);
    host.clock.advance_millis(DAY_MS - 1);
    assert!(
        keyed(&host, &token, key, POTION).await.replayed,
        "within 24 h"
    );
    host.clock.advance_millis(1);
    let later = keyed(&host, &token, key, POTION).await;
    assert_ok(&later);
    assert!(
        !later.replayed,
        "24 h on, the key counts for nothing: {later:?}"
    );
    assert_eq!(gold_and_potions(&host, &token).await, (900, 2));
    // The sweep deletes what is past the window: the key stored just now stays.
    let store = host.state.store.clone();
    let now = host.clock.now_millis();
    let deleted = host::idempotency::sweep_once(store.as_ref(), now - DAY_MS)
        .await
        .unwrap();
    assert_eq!(deleted, 0, "the first row was replaced by the second");
    host.clock.advance_millis(DAY_MS);
    let now = host.clock.now_millis();
    let deleted = host::idempotency::sweep_once(store.as_ref(), host::idempotency::expired_at(now))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
}

async fn a_retry_on_another_host_replays_the_first_hosts_reply(db: ScratchDb) {
    if !db.backend.is_shared() {
        return;
    }
    let (a, b) = (host_on(&db, "a").await, host_on(&db, "b").await);
    let (_, token) = a.login("frank").await;
    let key = Some(b"across-hosts".as_slice());
    let first = keyed(&a, &token, key, POTION).await;
    assert_ok(&first);
    let retry = keyed(&b, &token, key, POTION).await;
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(retry.body, first.body);
    assert_eq!(gold_and_potions(&b, &token).await, (950, 1));
}

async fn a_retry_racing_its_first_attempt_on_another_host_buys_once(db: ScratchDb) {
    if !db.backend.is_shared() {
        return;
    }
    let (a, b) = (host_on(&db, "a").await, host_on(&db, "b").await);
    let (_, token) = a.login("gina").await;
    // Attempts of one key at once on both hosts, many times over: whichever writes first, the
    // other's write conflicts and its run again replays the winner's reply.
    for round in 0..10 {
        let key = format!("race-{round}");
        let key = Some(key.as_bytes());
        let (one, two) = tokio::join!(
            keyed(&a, &token, key, POTION),
            keyed(&b, &token, key, POTION)
        );
        assert_ok(&one);
        assert_ok(&two);
        assert_eq!(one.body, two.body, "one reply for both");
        assert!(one.replayed != two.replayed, "{one:?} {two:?}");
    }
    assert_eq!(gold_and_potions(&a, &token).await, (500, 10));
}
