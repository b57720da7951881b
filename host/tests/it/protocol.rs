//! PROTOCOL.md v1 to the letter: the endpoints, every host code with its HTTP status, the
//! reply `cmd` rule, `msg` on every error, JSON content type, sessions and cookies.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::harness::{send, TestHost, DAY_MS};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts a host error: status, `ret`, a non-empty `msg`, and no server path anywhere in
/// the reply.
fn assert_error(host: &TestHost, (status, body): (u16, Value), want_status: u16, want_ret: i64) {
    assert_eq!(
        (status, body["ret"].as_i64()),
        (want_status, Some(want_ret)),
        "{body}"
    );
    let msg = body["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("no msg: {body}"));
    assert!(!msg.is_empty());
    let root = host.dirs.root.path().to_string_lossy().into_owned();
    let reply = body.to_string();
    for leak in [root.as_str(), "/src/", ".rs", "panicked"] {
        assert!(!reply.contains(leak), "the reply leaks `{leak}`: {reply}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_replies_player_id_token_and_cookie() {
    let host = TestHost::start().await;
    let response = reqwest::Client::new()
        .post(host.url("/login"))
        .body(r#"{"account":"alice","name":"Alice","head_img":"https://img/a.png"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ret"], 0);
    let player_id = body["player_id"].as_str().unwrap();
    assert!(
        player_id.len() == 32
            && player_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let token = body["token"].as_str().unwrap();
    assert!(!token.is_empty());
    assert_eq!(
        cookie,
        format!("sid={token}; Path=/; HttpOnly; SameSite=Lax")
    );

    let record = host.ok(token, "1203", json!({})).await;
    assert_eq!(
        record,
        json!({ "player_id": player_id, "name": "Alice", "head_img": "https://img/a.png",
                "gold": 1000, "diamond": 0, "items": {} })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_account_maps_to_the_same_player() {
    let host = TestHost::start().await;
    let (first, token_1) = host.login("bob").await;
    let (again, token_2) = host.login("bob").await;
    let (other, _) = host.login("carol").await;
    assert_eq!(first, again);
    assert_ne!(token_1, token_2);
    assert_ne!(first, other);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_logins_of_one_account_make_one_player() {
    let host = TestHost::start().await;
    let logins = futures::future::join_all((0..20).map(|_| host.login("crowd"))).await;
    let (first, _) = &logins[0];
    assert!(logins.iter().all(|(id, _)| id == first), "{logins:?}");
    let tokens: std::collections::HashSet<_> = logins.iter().map(|(_, token)| token).collect();
    assert_eq!(tokens.len(), 20, "one session per login");
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_of_1_to_64_allowed_characters_log_in() {
    let host = TestHost::start().await;
    for account in ["a", "Az09_.-", &"x".repeat(64)] {
        let (status, body) = host
            .post("/login", &json!({ "account": account }), None)
            .await;
        assert_eq!(
            (status, body["ret"].as_i64()),
            (200, Some(0)),
            "{account}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_logins_are_refused_with_400() {
    let host = TestHost::start().await;
    let too_long = format!(r#"{{"account":"{}"}}"#, "x".repeat(65));
    for body in [
        r#"{"account":""}"#,
        too_long.as_str(),
        r#"{"account":"has space"}"#,
        r#"{"account":"álvaro"}"#,
        r#"{"account":"a/b"}"#,
        r#"{"account":5}"#,
        r#"{"name":"no account"}"#,
        r#"{"account":"ok","name":[]}"#,
        r#"not json"#,
        r#"[1,2]"#,
    ] {
        assert_error(
            &host,
            host.post_raw("/login", body.to_owned(), None).await,
            400,
            -2,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sid_cookie_works_like_the_bearer_token() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("dave").await;
    let request = reqwest::Client::new()
        .post(host.url("/logic"))
        .header("cookie", format!("theme=dark; sid={token}"))
        .body(r#"{"cmd":"1203"}"#);
    let (status, body) = send(request).await;
    assert_eq!(
        (status, body["data"]["player_id"].as_str()),
        (200, Some(player_id.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_unknown_and_expired_sessions_get_401() {
    let host = TestHost::start().await;
    let logic = json!({ "cmd": "1203" });
    assert_error(&host, host.post("/logic", &logic, None).await, 401, -3);
    assert_error(
        &host,
        host.post("/logic", &logic, Some("not-a-token")).await,
        401,
        -3,
    );

    let (_, token) = host.login("erin").await;
    host.clock.advance_millis(7 * DAY_MS - 1);
    assert_eq!(
        host.post("/logic", &logic, Some(&token)).await.0,
        200,
        "valid just before 7 days"
    );
    host.clock.advance_millis(1);
    assert_error(
        &host,
        host.post("/logic", &logic, Some(&token)).await,
        401,
        -3,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let host = TestHost::start().await;
    let (_, token) = host.login("fay").await;
    let (_, other_token) = host.login("fay").await;
    let response = reqwest::Client::new()
        .post(host.url("/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("sid=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "ret": 0 }));

    assert_error(&host, host.logic(&token, "1203", json!({})).await, 401, -3);
    assert_error(
        &host,
        host.post_raw("/logout", "", Some(&token)).await,
        401,
        -3,
    );
    assert_eq!(
        host.logic(&other_token, "1203", json!({})).await.0,
        200,
        "only that session ends"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_carry_the_command_plus_one() {
    let host = TestHost::start().await;
    let (_, token) = host.login("gus").await;
    let (_, ok) = host.logic(&token, "1101", json!({})).await;
    assert_eq!(
        (ok["ret"].as_i64(), ok["cmd"].as_str()),
        (Some(0), Some("1102"))
    );
    let (_, refused) = host
        .logic(&token, "1103", json!({ "id": "sword", "count": 99 }))
        .await;
    assert_eq!(
        (refused["ret"].as_i64(), refused["cmd"].as_str()),
        (Some(1), Some("1104"))
    );
    assert!(refused["msg"].as_str().is_some_and(|m| !m.is_empty()));
    let (_, unknown) = host.logic(&token, "4201", json!({})).await;
    assert_eq!(unknown["cmd"], "4202");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_prefix_and_unknown_command_get_minus_1() {
    let host = TestHost::start().await;
    let (_, token) = host.login("hal").await;
    assert_error(&host, host.logic(&token, "4201", json!({})).await, 200, -1);
    assert_error(&host, host.logic(&token, "1105", json!({})).await, 200, -1);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_envelopes_get_400() {
    let host = TestHost::start().await;
    let (_, token) = host.login("ivy").await;
    let deep = format!(
        r#"{{"cmd":"1203","data":{{"x":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"\"1203\"".to_vec(),
        br#"{"data":{}}"#.to_vec(),
        br#"{"cmd":1203}"#.to_vec(),
        br#"{"cmd":"120"}"#.to_vec(),
        br#"{"cmd":"12031"}"#.to_vec(),
        br#"{"cmd":"12a3"}"#.to_vec(),
        br#"{"cmd":"-123"}"#.to_vec(),
        br#"{"cmd":" 1203"}"#.to_vec(),
        r#"{"cmd":"１２０３"}"#.as_bytes().to_vec(),
        br#"{"cmd":"1203","data":[1]}"#.to_vec(),
        br#"{"cmd":"1203","data":"x"}"#.to_vec(),
        b"{\"cmd\":\"1203\",\"data\":{\"x\":\"\xff\xfe\"}}".to_vec(),
        deep.into_bytes(),
        Vec::new(),
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let reply = host.post_raw("/logic", body, Some(&token)).await;
        assert_eq!(reply.0, 400, "{shown}: {}", reply.1);
        assert_error(&host, reply, 400, -2);
    }
    assert_eq!(
        host.logic(&token, "1203", json!({})).await.0,
        200,
        "still serving"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_413_declared_or_chunked() {
    let host = TestHost::start_in(demo_dirs(), |config| config.server.body_limit = 1024).await;
    let (_, token) = host.login("jay").await;
    let big = format!(
        r#"{{"cmd":"1203","data":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    assert_error(
        &host,
        host.post_raw("/logic", big.clone(), Some(&token)).await,
        413,
        -4,
    );
    assert_error(
        &host,
        host.post_raw("/login", big.clone(), None).await,
        413,
        -4,
    );

    // Chunked: no Content-Length, so the limit is enforced while reading.
    let (status, body) = chunked_post(&host, "/logic", &token, big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ret"], -4);

    let (status, _) = chunked_post(&host, "/logic", &token, br#"{"cmd":"1203"}"#);
    assert_eq!(status, 200, "a chunked body under the limit is served");
    assert_eq!(
        host.logic(&token, "1203", json!({})).await.0,
        200,
        "still serving"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_unknown_endpoints() {
    let host = TestHost::start().await;
    assert_eq!(
        host.get("/health").await,
        (200, json!({ "ret": 0, "status": "ok" }))
    );
    assert_error(&host, host.get("/nothing").await, 404, -1);
    assert_error(&host, host.get("/logic").await, 405, -2);
    assert_error(&host, host.post_raw("/health", "", None).await, 405, -2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_reply_is_a_json_object_with_a_ret() {
    let host = TestHost::start_in(demo_dirs(), |config| config.server.body_limit = 1024).await;
    let (_, token) = host.login("kim").await;
    let big = format!(
        r#"{{"cmd":"1203","data":{{"pad":"{}"}}}}"#,
        "x".repeat(2048)
    );
    let client = reqwest::Client::new();
    for (method, path, body, auth, want_status) in [
        ("POST", "/logic", r#"{"cmd":"1203"}"#, true, 200),
        (
            "POST",
            "/logic",
            r#"{"cmd":"1103","data":{"id":"none","count":1}}"#,
            true,
            200,
        ),
        ("POST", "/logic", r#"{"cmd":"4201"}"#, true, 200),
        ("POST", "/logic", r#"{"cmd":"1203"}"#, false, 401),
        ("POST", "/logic", "garbage", true, 400),
        ("POST", "/logic", big.as_str(), true, 413),
        ("GET", "/logic", "", true, 405),
        ("POST", "/nothing", "", false, 404),
        ("GET", "/health", "", false, 200),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client
            .request(method.clone(), host.url(path))
            .body(body.to_owned());
        if auth {
            request = request.bearer_auth(&token);
        }
        let response = request.send().await.unwrap();
        let case = format!("{method} {path} {}", &body[..body.len().min(40)]);
        assert_eq!(response.status(), want_status, "{case}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{case}"
        );
        let reply: Value = response.json().await.unwrap();
        assert!(reply["ret"].is_i64(), "{case}: {reply}");
    }
}

/// A graceful stop refuses new connections but serves every request on the open ones, each
/// reply closing its connection. Behind nginx those are its kept-alive connections, and a POST
/// nginx has sent it never sends to another host: a refusal here would reach the player.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_host_serves_the_requests_on_its_open_connections() {
    let host = TestHost::start().await;
    let (_, token) = host.login("late").await;
    let logic_head =
        format!("POST /logic HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n");
    let logic_rest = "Content-Length: 14\r\n\r\n{\"cmd\":\"1203\"}";
    // Two connections whose requests are not complete when shutdown begins, and one kept
    // alive, idle after a first request.
    let mut health = HalfSent::open(&host, "GET /health HTTP/1.1\r\nHost: test\r\n").await;
    let logic = HalfSent::open(&host, &logic_head).await;
    let mut idle = HalfSent::open(&host, &logic_head).await;
    let (status, head, _) = idle.exchange(logic_rest).await;
    assert_eq!(status, 200);
    assert!(!closes(&head), "kept alive while serving: {head}");
    let addr = host.addr;

    let state = host.state.clone();
    let stopping = tokio::spawn(host.stop());
    // Nothing announces that shutdown has begun but the flag the host sets for it.
    let flagged = async {
        while !state.is_shutting_down() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), flagged)
        .await
        .expect("shutdown begins");
    // The listener is closed: a client learns at once to go elsewhere, nothing sent.
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "a new connection to a stopping host");

    // The load balancer's probe: 503 while shutting down.
    let (status, head, body) = health.exchange("\r\n").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["ret"].as_i64()), (503, Some(-6)), "{body}");
    assert!(closes(&head), "{head}");
    // Commands are served, and their connections closed after the reply.
    let whole = format!("{logic_head}{logic_rest}");
    for (mut connection, rest, what) in [
        (logic, logic_rest, "a request half sent"),
        (idle, whole.as_str(), "a kept-alive connection"),
    ] {
        let (status, head, body) = connection.exchange(rest).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, body["ret"].as_i64()),
            (200, Some(0)),
            "{what}: {body}"
        );
        assert!(closes(&head), "{what}: {head}");
        assert!(
            connection.closed().await,
            "{what}: still open after the reply"
        );
    }
    stopping.await.unwrap();
}

/// Whether a reply's head says `Connection: close`.
fn closes(head: &str) -> bool {
    head.to_ascii_lowercase().contains("\r\nconnection: close")
}

fn demo_dirs() -> crate::harness::Dirs {
    let dirs = crate::harness::Dirs::new();
    for module in crate::harness::DEMO_MODULES {
        dirs.install(module);
    }
    dirs
}

/// Sends a chunked POST over a raw socket (clients rarely do; a hostile one might) and
/// returns the status and body of the reply.
fn chunked_post(host: &TestHost, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(host.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(512) {
        // The host may answer and close before the whole body is sent.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || stream.write_all(chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    parse_reply(&reply)
}

/// A raw connection that has sent the start of a request and sends the rest later.
struct HalfSent(tokio::net::TcpStream);

impl HalfSent {
    async fn open(host: &TestHost, start: &str) -> HalfSent {
        let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
        stream.write_all(start.as_bytes()).await.unwrap();
        HalfSent(stream)
    }

    /// Sends the rest of the request and reads one reply (by its Content-Length), leaving the
    /// connection as the host left it; returns its status, head and body.
    async fn exchange(&mut self, rest: &str) -> (u16, String, String) {
        self.0.write_all(rest.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        let read = async {
            loop {
                let text = String::from_utf8_lossy(&reply).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .expect("a Content-Length");
                    if body.len() >= length {
                        return (head.to_owned(), body.to_owned());
                    }
                }
                let mut chunk = [0; 4096];
                let n = self.0.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the connection closed before a whole reply");
                reply.extend_from_slice(&chunk[..n]);
            }
        };
        let (head, body) = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a reply within 10 s");
        (parse_reply(head.as_bytes()).0, head, body)
    }

    /// Whether the host closes the connection (within 10 s) with nothing more sent.
    async fn closed(mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.0.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

/// The status and body of a raw HTTP/1.1 reply (the host always sends a Content-Length,
/// never a chunked body).
fn parse_reply(reply: &[u8]) -> (u16, String) {
    let reply = String::from_utf8_lossy(reply);
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, body.to_owned())
}
