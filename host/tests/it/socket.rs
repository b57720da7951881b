//! The WebSocket channel, `GET /ws` (docs/PROTOCOL.md, "The socket"), on the real host with a
//! real WebSocket client: the first message, commands with their `cid`, every limit and its
//! close code, a hot swap under an open socket, and shutdown's "going away".

use crate::harness::{library, Dirs, TestHost, DEMO_MODULES};
use crate::ws::{
    closed, closed_count, connect, next, open_as, send, wait_for_closed_count, ws_url, PATIENCE,
};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

#[tokio::test]
async fn commands_over_the_socket_are_answered_as_over_http_with_their_cid() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("ws_alice").await;
    let (mut socket, welcome) = open_as(&host, &token).await;
    assert_eq!(welcome, json!({ "ret": 0, "player_id": player_id }));

    // Several commands at once, each answered once with its cid; replies may come in any order.
    send(&mut socket, json!({ "cid": 1, "cmd": "1101" })).await;
    send(
        &mut socket,
        json!({ "cid": 2, "cmd": "1103", "data": { "id": "potion", "count": 1 } }),
    )
    .await;
    let mut replies = [next(&mut socket).await, next(&mut socket).await];
    replies.sort_by_key(|reply| reply["cid"].as_u64());
    let (_, goods_over_http) = host.logic(&token, "1101", json!({})).await;
    let mut goods = replies[0].clone();
    assert_eq!(goods.as_object_mut().unwrap().remove("cid"), Some(json!(1)));
    assert_eq!(goods, goods_over_http, "the same reply as POST /logic");
    assert_eq!(replies[1]["cid"], json!(2));
    assert_eq!(replies[1]["ret"], json!(0), "{}", replies[1]);
    assert_eq!(replies[1]["cmd"], json!("1104"));
    // The purchase is the player's, as over HTTP.
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(record["items"], replies[1]["data"]["items"]);

    // Errors of a command carry its cid; a message without one cannot, and says why.
    send(&mut socket, json!({ "cid": 3, "cmd": "9901" })).await;
    let unknown = next(&mut socket).await;
    assert_eq!(
        (unknown["cid"].clone(), unknown["ret"].clone()),
        (json!(3), json!(-1))
    );
    assert_eq!(unknown["cmd"], json!("9902"));
    send(&mut socket, json!({ "cid": 4, "cmd": "12" })).await;
    let bad = next(&mut socket).await;
    assert_eq!(
        (bad["cid"].clone(), bad["ret"].clone()),
        (json!(4), json!(-2))
    );
    send(&mut socket, json!({ "cmd": "1203" })).await;
    let no_cid = next(&mut socket).await;
    assert_eq!(no_cid["ret"], json!(-2));
    assert!(no_cid.get("cid").is_none());
    assert!(no_cid["msg"].as_str().unwrap().contains("cid"), "{no_cid}");
    socket.send(Message::text("not json")).await.expect("sent");
    assert_eq!(next(&mut socket).await["ret"], json!(-2));

    // Each command has its access line's count under the endpoint `ws`.
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("game_host_requests_total{endpoint=\"ws\",cmd=\"1103\",ret=\"0\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("game_host_sockets_open 1"), "{metrics}");

    // The client closes: the host answers and counts it.
    socket.close(None).await.expect("closed");
    wait_for_closed_count(&host, 1000, 1).await;
    host.stop().await;
}

#[tokio::test]
async fn a_bad_first_message_closes_the_socket_with_a_code_that_says_why() {
    let host = TestHost::start_in(demo_dirs(), |config| {
        config.socket.hello_timeout_secs = 1;
    })
    .await;
    let (_, token) = host.login("ws_bob").await;

    let mut socket = connect(&host).await;
    send(&mut socket, json!({ "token": "no-such-token" })).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4001);
    assert!(reason.contains("log in again"), "{reason}");

    let mut socket = connect(&host).await;
    send(&mut socket, json!({ "tokn": token })).await;
    assert_eq!(closed(&mut socket).await.0, 4000);

    let mut socket = connect(&host).await;
    send(&mut socket, json!({ "token": token, "since": -3 })).await;
    assert_eq!(closed(&mut socket).await.0, 4000);

    let mut socket = connect(&host).await;
    socket
        .send(Message::binary(token.clone().into_bytes()))
        .await
        .expect("sent");
    assert_eq!(closed(&mut socket).await.0, 1003);

    // Silence: closed after socket.hello_timeout_secs.
    let mut socket = connect(&host).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4002);
    assert!(reason.contains("token"), "{reason}");

    // With a good token, the resume point is accepted.
    let mut socket = connect(&host).await;
    send(&mut socket, json!({ "token": token, "since": 12 })).await;
    assert_eq!(next(&mut socket).await["ret"], json!(0));
    host.stop().await;
}

#[tokio::test]
async fn a_message_over_the_limit_and_a_binary_message_close_the_socket() {
    let host = TestHost::start_in(demo_dirs(), |config| {
        config.socket.max_message_bytes = 1024;
    })
    .await;
    let (_, token) = host.login("ws_carol").await;
    let (mut socket, _) = open_as(&host, &token).await;
    let padding = "x".repeat(2000);
    send(
        &mut socket,
        json!({ "cid": 1, "cmd": "1203", "data": { "pad": padding } }),
    )
    .await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 1009);
    assert!(reason.contains("max_message_bytes"), "{reason}");

    let (mut socket, _) = open_as(&host, &token).await;
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("sent");
    assert_eq!(closed(&mut socket).await.0, 1003);
    host.stop().await;
}

#[tokio::test]
async fn commands_over_the_rate_are_answered_minus_6_and_not_run() {
    let host = TestHost::start_in(demo_dirs(), |config| {
        config.socket.commands_per_sec = 1;
        config.socket.command_burst = 3;
    })
    .await;
    let (_, token) = host.login("ws_dave").await;
    let (mut socket, _) = open_as(&host, &token).await;
    for cid in 0..8 {
        send(
            &mut socket,
            json!({ "cid": cid, "cmd": "1103", "data": { "id": "potion", "count": 1 } }),
        )
        .await;
    }
    let mut replies = Vec::new();
    for _ in 0..8 {
        replies.push(next(&mut socket).await);
    }
    let bought = replies.iter().filter(|r| r["ret"] == json!(0)).count();
    let refused: Vec<&Value> = replies.iter().filter(|r| r["ret"] == json!(-6)).collect();
    // The burst of 3, and perhaps one more refilled while they were read.
    assert!((3..=4).contains(&bought), "{replies:?}");
    assert_eq!(bought + refused.len(), 8, "{replies:?}");
    assert!(refused[0]["msg"]
        .as_str()
        .unwrap()
        .contains("commands_per_sec"));
    assert_eq!(refused[0]["cmd"], json!("1104"));
    // Only the commands run bought anything.
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(record["items"]["potion"], json!(bought), "{record}");
    host.stop().await;
}

#[tokio::test]
async fn a_logout_ends_the_socket_at_its_next_command() {
    let host = TestHost::start().await;
    let (_, token) = host.login("ws_erin").await;
    let (mut socket, _) = open_as(&host, &token).await;
    let (status, _) = host.post("/logout", &json!({}), Some(&token)).await;
    assert_eq!(status, 200);
    send(&mut socket, json!({ "cid": 9, "cmd": "1203" })).await;
    let reply = next(&mut socket).await;
    assert_eq!(
        (reply["cid"].clone(), reply["ret"].clone()),
        (json!(9), json!(-3))
    );
    assert_eq!(closed(&mut socket).await.0, 4001);
    host.stop().await;
}

#[tokio::test]
async fn past_max_sockets_a_new_socket_is_closed_with_1013() {
    let host = TestHost::start_in(demo_dirs(), |config| config.socket.max_sockets = 2).await;
    let (_, token) = host.login("ws_frank").await;
    let (mut first, _) = open_as(&host, &token).await;
    let (_second, _) = open_as(&host, &token).await;
    let mut third = connect(&host).await;
    let (code, reason) = closed(&mut third).await;
    assert_eq!(code, 1013);
    assert!(reason.contains("max_sockets"), "{reason}");
    // A place frees when a socket closes.
    first.close(None).await.expect("closed");
    wait_for_closed_count(&host, 1000, 1).await;
    let (_, welcome) = open_as(&host, &token).await;
    assert_eq!(welcome["ret"], json!(0));
    host.stop().await;
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_as_idle() {
    let host = TestHost::start_in(demo_dirs(), |config| {
        config.socket.ping_secs = 1;
        config.socket.idle_timeout_secs = 2;
    })
    .await;
    let (_, token) = host.login("ws_gina").await;
    let (mut socket, _) = open_as(&host, &token).await;
    // Not reading, the client answers no ping.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4004);
    assert!(reason.contains("ping"), "{reason}");

    // A client that reads (and so answers pings) stays open past the timeout.
    let (mut socket, _) = open_as(&host, &token).await;
    let until = Instant::now() + Duration::from_millis(3500);
    while let Ok(message) = tokio::time::timeout_at(until.into(), socket.next()).await {
        assert!(
            matches!(message, Some(Ok(Message::Ping(_)))),
            "only pings: {message:?}"
        );
    }
    send(&mut socket, json!({ "cid": 1, "cmd": "1203" })).await;
    assert_eq!(next(&mut socket).await["ret"], json!(0));
    host.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_and_its_queue_stays_bounded() {
    let host = TestHost::start_in(demo_dirs(), |config| {
        config.socket.send_queue = 8;
        config.socket.commands_per_sec = 1_000_000;
        config.socket.command_burst = 64;
    })
    .await;
    let (_, token) = host.login("ws_hank").await;
    // A small receive window, so that replies stop flowing soon after the client stops reading.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(host.addr).await.expect("connects");
    let request = ws_url(&host).into_client_request().unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("the socket opens");
    send(&mut socket, json!({ "token": token })).await;
    assert_eq!(next(&mut socket).await["ret"], json!(0));
    // The goods list is a reply of a few hundred bytes; thousands of them are megabytes the
    // client never reads.
    let command = Message::text(json!({ "cid": 1, "cmd": "1101" }).to_string());
    let mut sent = 0;
    while closed_count(&host, 4003).await == 0 {
        for _ in 0..200 {
            if socket.feed(command.clone()).await.is_err() {
                break;
            }
        }
        if socket.flush().await.is_err() {
            break;
        }
        sent += 200;
        assert!(
            sent < 200_000,
            "the host never closed the socket of a client that does not read"
        );
    }
    wait_for_closed_count(&host, 4003, 1).await;
    // The host let go of the socket: its count is back to 0.
    let start = Instant::now();
    while !host.metrics().await.contains("game_host_sockets_open 0") {
        assert!(
            start.elapsed() < PATIENCE,
            "the socket is still counted open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.stop().await;
}

/// A host with the demo modules and build "a" of the test module `swap` (9501 says which
/// build answers, 9503 sleeps).
async fn swap_host() -> TestHost {
    let dirs = demo_dirs();
    std::fs::copy(library("fixture_swap_a"), dirs.plugins().join("libswap.so")).unwrap();
    TestHost::start_in(dirs, |config| config.plugins.debounce_ms = 50).await
}

fn demo_dirs() -> Dirs {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    dirs
}

#[tokio::test]
async fn a_hot_swap_leaves_the_socket_open_and_its_next_command_runs_the_new_version() {
    let host = swap_host().await;
    let (_, token) = host.login("ws_ivy").await;
    let (mut socket, _) = open_as(&host, &token).await;
    send(&mut socket, json!({ "cid": 1, "cmd": "9501" })).await;
    assert_eq!(next(&mut socket).await["data"]["build"], json!("a"));
    // A command in flight during the swap finishes on the version it started on.
    send(
        &mut socket,
        json!({ "cid": 2, "cmd": "9503", "data": { "ms": 500 } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let temp = host.dirs.plugins().join(".libswap.so.partial");
    std::fs::copy(library("fixture_swap_b"), &temp).unwrap();
    std::fs::rename(&temp, host.dirs.plugins().join("libswap.so")).unwrap();
    let slow = next(&mut socket).await;
    assert_eq!(
        (slow["cid"].clone(), slow["data"]["build"].clone()),
        (json!(2), json!("a"))
    );
    let start = Instant::now();
    let mut cid = 10;
    loop {
        send(&mut socket, json!({ "cid": cid, "cmd": "9501" })).await;
        let reply = next(&mut socket).await;
        assert_eq!(
            reply["ret"],
            json!(0),
            "no command fails during the swap: {reply}"
        );
        if reply["data"]["build"] == json!("b") {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "build b never served the socket"
        );
        cid += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        closed_count(&host, 1001).await + closed_count(&host, 1006).await,
        0
    );
    host.stop().await;
}

#[tokio::test]
async fn shutdown_answers_the_commands_in_flight_then_closes_every_socket_going_away() {
    let host = swap_host().await;
    let (_, token) = host.login("ws_jack").await;
    let (mut busy, _) = open_as(&host, &token).await;
    let (mut idle, _) = open_as(&host, &token).await;
    send(
        &mut busy,
        json!({ "cid": 5, "cmd": "9503", "data": { "ms": 700 } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = ws_url(&host);
    let stopping = tokio::spawn(host.stop());
    let reply = next(&mut busy).await;
    assert_eq!(
        (reply["cid"].clone(), reply["ret"].clone()),
        (json!(5), json!(0))
    );
    let (code, reason) = closed(&mut busy).await;
    assert_eq!(code, 1001);
    assert!(reason.contains("connect again"), "{reason}");
    assert_eq!(closed(&mut idle).await.0, 1001);
    stopping.await.expect("the host stops");
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "a stopped host takes no socket"
    );
}

#[tokio::test]
async fn ws_without_an_upgrade_is_the_clients_error() {
    let host = TestHost::start().await;
    let (status, body) = host.get("/ws").await;
    assert_eq!(status, 400);
    assert_eq!(body["ret"], json!(-2));
    assert!(
        body["msg"].as_str().unwrap().contains("WebSocket"),
        "{body}"
    );
    let (status, body) = host.post("/ws", &json!({}), None).await;
    assert_eq!(status, 405);
    assert_eq!(body["ret"], json!(-2));
    let (status, body) = host.get("/wss").await;
    assert_eq!(status, 404);
    assert!(body["msg"].as_str().unwrap().contains("GET /ws"), "{body}");
    host.stop().await;
}

#[tokio::test]
async fn a_keyed_command_is_applied_once_over_the_socket_and_over_http() {
    let host = TestHost::start().await;
    let (_, token) = host.login("ws_kim").await;
    let (mut socket, _) = open_as(&host, &token).await;
    let buy =
        json!({ "cid": 1, "cmd": "1103", "key": "k-1", "data": { "id": "potion", "count": 1 } });
    send(&mut socket, buy.clone()).await;
    let first = next(&mut socket).await;
    assert_eq!(
        (first["ret"].clone(), first.get("replayed")),
        (json!(0), None),
        "{first}"
    );
    // The same key again, over the socket: the first reply, marked, not run again.
    send(
        &mut socket,
        json!({ "cid": 2, "cmd": "1103", "key": "k-1", "data": { "id": "potion", "count": 1 } }),
    )
    .await;
    let again = next(&mut socket).await;
    assert_eq!(again["replayed"], json!(true), "{again}");
    assert_eq!(again["data"], first["data"]);
    // And over HTTP with the header: the same key for the same player.
    let response = reqwest::Client::new()
        .post(host.url("/logic"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k-1")
        .json(&json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(record["items"]["potion"], json!(1), "bought once: {record}");
    // A bad key is the client's error, answered with the cid.
    send(
        &mut socket,
        json!({ "cid": 3, "cmd": "1203", "key": "has space" }),
    )
    .await;
    let bad = next(&mut socket).await;
    assert_eq!(
        (bad["cid"].clone(), bad["ret"].clone()),
        (json!(3), json!(-2)),
        "{bad}"
    );
    host.stop().await;
}
