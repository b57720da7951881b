//! Bad clients are cut off without disturbing others: a client that sends its headers or its
//! body too slowly (slowloris), a kept-alive connection left idle, a client that stops reading
//! its replies, and connections past `server.max_connections`.

use crate::harness::{Dirs, TestHost};
use crate::ops::sample;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a raw connection shows within `wait`: the bytes it sent before it ended, or `None` if
/// it is still open.
async fn ended_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = async {
        let mut chunk = [0; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

async fn host_with(tweak: impl FnOnce(&mut host::Config)) -> TestHost {
    TestHost::start_in(Dirs::new(), tweak).await
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: game\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_client_too_slow_with_its_headers_is_cut_off_and_others_are_served() {
    let host = host_with(|config| config.server.header_read_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(host.addr).await.unwrap();
    slow.write_all(b"POST /logic HTTP/1.1\r\nHost: game\r\n")
        .await
        .unwrap();
    // Others are served meanwhile.
    for _ in 0..3 {
        assert_eq!(host.get("/health").await.0, 200);
    }
    let ended = ended_within(&mut slow, Duration::from_secs(20)).await;
    assert!(ended.is_some(), "the slow connection is closed");
    assert!(
        !ended.unwrap().contains("200 OK"),
        "nothing was served on it"
    );
    assert_eq!(host.get("/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed() {
    let host = host_with(|config| config.server.header_read_timeout_secs = 1).await;
    let mut idle = TcpStream::connect(host.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    let mut reply = [0; 1024];
    let n = idle.read(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive after the reply, then closed when no next request comes.
    assert!(
        ended_within(&mut idle, Duration::from_secs(20))
            .await
            .is_some(),
        "the idle connection is closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_too_slow_with_its_body_gets_minus_2_and_is_cut_off() {
    let host = host_with(|config| config.server.body_read_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(host.addr).await.unwrap();
    slow.write_all(
        b"POST /login HTTP/1.1\r\nHost: game\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"account\":",
    )
    .await
    .unwrap();
    assert_eq!(
        host.get("/health").await.0,
        200,
        "others are served meanwhile"
    );
    let reply = ended_within(&mut slow, Duration::from_secs(20))
        .await
        .expect("the connection is closed after the reply");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    assert!(reply.contains(r#""ret":-2"#), "{reply}");
    assert!(reply.contains("did not arrive within 1 s"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_at_once_and_the_open_ones_are_served() {
    let host = host_with(|config| config.server.max_connections = 2).await;
    let mut first = TcpStream::connect(host.addr).await.unwrap();
    let mut second = TcpStream::connect(host.addr).await.unwrap();
    // Both are taken (a request answered on each), so the cap is full.
    for stream in [&mut first, &mut second] {
        stream.write_all(HEALTH).await.unwrap();
        let mut reply = [0; 1024];
        let n = stream.read(&mut reply).await.unwrap();
        assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 200"));
    }
    let mut third = TcpStream::connect(host.addr).await.unwrap();
    let _ = third.write_all(HEALTH).await;
    let ended = ended_within(&mut third, Duration::from_secs(20)).await;
    assert_eq!(ended.as_deref(), Some(""), "closed at once, nothing served");

    // The open ones are still served.
    first.write_all(HEALTH).await.unwrap();
    let mut reply = [0; 1024];
    let n = first.read(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 200"));

    // Once one closes, a new connection is served.
    drop(second);
    let mut served = None;
    for _ in 0..100 {
        let mut fourth = TcpStream::connect(host.addr).await.unwrap();
        let _ = fourth.write_all(HEALTH).await;
        let mut reply = [0; 1024];
        if let Ok(n @ 1..) = fourth.read(&mut reply).await {
            served = Some(String::from_utf8_lossy(&reply[..n]).into_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served
        .expect("served once a place is free")
        .starts_with("HTTP/1.1 200"));

    let metrics = host.metrics().await;
    let refused = sample(&metrics, "game_host_connections_refused_total").unwrap_or(0.0);
    assert!(refused >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_its_replies_is_cut_off() {
    let host = host_with(|config| config.server.write_timeout_secs = 1).await;
    let stream = TcpStream::connect(host.addr).await.unwrap();
    let (_reader, mut writer) = stream.into_split();
    // Requests pipelined for ever, no reply ever read: once the sockets' buffers are full the
    // host's writes wait, it stops reading requests, and the sending blocks. Only the host
    // closing the connection ends it (a write fails).
    let sending = tokio::spawn(async move {
        let batch = HEALTH.repeat(1000);
        let mut sent = 0usize;
        while writer.write_all(&batch).await.is_ok() {
            sent += 1000;
        }
        sent
    });
    let sent = tokio::time::timeout(Duration::from_secs(60), sending)
        .await
        .expect("the host closed the connection (without the cut, the sending blocks for ever)")
        .unwrap();
    assert!(sent > 0, "requests went through before the cut");
    assert_eq!(host.get("/health").await.0, 200, "others are served");
}
