//! A WebSocket client for the tests of `GET /ws` (`socket.rs`, `push.rs`, `push_served.rs`):
//! open a socket as a player (on an in-process host, or at any address: a real binary, nginx),
//! send, read the next message or the close frame, and read the host's socket metrics.

use crate::harness::TestHost;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for one message.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub async fn connect(host: &TestHost) -> Client {
    let (socket, response) = tokio_tungstenite::connect_async(ws_url(host))
        .await
        .expect("the socket opens");
    assert_eq!(response.status(), 101);
    socket
}

pub fn ws_url(host: &TestHost) -> String {
    format!("ws://{}/ws", host.addr)
}

/// Opens a socket and sends the first message; returns the socket and the host's answer.
pub async fn open_as(host: &TestHost, token: &str) -> (Client, Value) {
    let mut socket = connect(host).await;
    send(&mut socket, json!({ "token": token })).await;
    let welcome = next(&mut socket).await;
    (socket, welcome)
}

pub async fn send(socket: &mut Client, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("the message goes out");
}

/// The next text message, as JSON (pings are answered by the client library on the way).
pub async fn next(socket: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a good frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON text"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Reads on until the host's close frame: its code and reason.
pub async fn closed(socket: &mut Client) -> (u16, String) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Err(_) => panic!("no close frame in time"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Ok(Some(Ok(Message::Close(None)))) => panic!("a close frame without a code"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("the connection broke before a close frame: {e}"),
            Ok(None) => panic!("the connection ended before a close frame"),
        }
    }
}

/// `socket_closed{code}` in the host's metrics.
pub async fn closed_count(host: &TestHost, code: u16) -> u64 {
    let metrics = host.metrics().await;
    let series = format!("game_host_sockets_closed_total{{code=\"{code}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

pub async fn wait_for_closed_count(host: &TestHost, code: u16, count: u64) {
    let start = Instant::now();
    while closed_count(host, code).await < count {
        assert!(
            start.elapsed() < PATIENCE,
            "no {count} sockets closed with {code}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a socket as the player of `token`, resuming after push `since`; returns the socket
/// once the host has answered.
pub async fn open_since(host: &TestHost, token: &str, since: u64) -> Client {
    let mut socket = connect(host).await;
    send(&mut socket, json!({ "token": token, "since": since })).await;
    assert_eq!(next(&mut socket).await["ret"], json!(0));
    socket
}

/// Asserts that no text message arrives within `within` (pings are answered meanwhile).
pub async fn nothing_within(socket: &mut Client, within: Duration) {
    let until = tokio::time::Instant::now() + within;
    while let Ok(message) = tokio::time::timeout_at(until, socket.next()).await {
        match message {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected nothing, got {other:?}"),
        }
    }
}

/// `ws://ADDRESS/ws`: the socket of a real binary, or of nginx in front of hosts.
pub fn ws_url_at(address: std::net::SocketAddr) -> String {
    format!("ws://{address}/ws")
}

/// Opens a socket at `url` (a host, or a proxy in front of hosts) as the player of `token`,
/// resuming after push `since`; returns the socket once the host has answered `ret: 0`.
pub async fn open_since_url(url: &str, token: &str, since: u64) -> Client {
    let (mut socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("the socket at {url} opens: {e}"));
    assert_eq!(response.status(), 101);
    send(&mut socket, json!({ "token": token, "since": since })).await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["ret"], json!(0), "{welcome}");
    socket
}

/// Opens a socket to `host` over a TCP connection with a small receive buffer, so that what
/// the host sends stops flowing soon after the client stops reading; sends the first message,
/// resuming after push `since`, and reads the welcome.
pub async fn open_with_small_window(host: &TestHost, token: &str, since: u64) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(host.addr).await.expect("connects");
    let request = ws_url(host).into_client_request().unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("the socket opens");
    send(&mut socket, json!({ "token": token, "since": since })).await;
    assert_eq!(next(&mut socket).await["ret"], json!(0));
    socket
}
