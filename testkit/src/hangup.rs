//! A client that hangs up: it sends a whole request on a connection of its own, then closes
//! the connection at a chosen moment, as a load generator does when its time is up and a phone
//! does when it loses its network. The host's tests and the soak's hostile client both use it.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// When the client closes its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    /// Right after the last byte of the request is sent.
    AfterSending,
    /// This long after sending: while the host runs the request.
    After(Duration),
    /// Once the first bytes of the reply have come, without reading the rest. (A small reply
    /// is written whole by then: this is a hang-up after the host's last await, as the
    /// reply goes out.)
    DuringReply,
    /// Never: the reply is read whole (the request says `Connection: close`).
    Never,
}

impl HangUp {
    /// One of the moments, picked by `random` (any number): each of the three hang-ups
    /// (`After` up to `max_wait`) in about 3 of 10 requests, and 1 in 10 read to the end.
    pub fn pick(random: u64, max_wait: Duration) -> HangUp {
        match random % 10 {
            0..=2 => HangUp::AfterSending,
            3..=5 => {
                let micros = (random / 10) % (max_wait.as_micros().max(1) as u64);
                HangUp::After(Duration::from_micros(micros))
            }
            6..=8 => HangUp::DuringReply,
            _ => HangUp::Never,
        }
    }
}

/// A reply read to its end: the status and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// `POST path` with a JSON `body` and a bearer `token`, closed as `hang_up` says. The reply
/// only for [`HangUp::Never`] (`None` if the host closed without one).
pub async fn post(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
    hang_up: HangUp,
) -> std::io::Result<Option<Reply>> {
    let auth = token.map(|token| format!("Bearer {token}"));
    let request = post_bytes(addr, path, auth.as_deref(), body.as_bytes());
    send(addr, &request, hang_up).await
}

/// The bytes of a `POST` of JSON `body` to `path` with `Connection: close` and, if given, the
/// `Authorization` header's value `auth`.
pub fn post_bytes(addr: SocketAddr, path: &str, auth: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends the bytes of a whole `request` on a new connection, closed as `hang_up` says; the
/// reply only for [`HangUp::Never`] (and only if the request says `Connection: close`).
pub async fn send(
    addr: SocketAddr,
    request: &[u8],
    hang_up: HangUp,
) -> std::io::Result<Option<Reply>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    match hang_up {
        HangUp::AfterSending => Ok(None),
        HangUp::After(wait) => {
            tokio::time::sleep(wait).await;
            Ok(None)
        }
        HangUp::DuringReply => {
            let mut first = [0u8; 16];
            let _ = stream.read(&mut first).await?;
            Ok(None)
        }
        HangUp::Never => {
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            Ok(parse(&raw))
        }
    }
}

/// Status and body of a whole HTTP/1.1 reply (the body as it came: no chunked framing, which
/// the host does not use for JSON).
fn parse(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        body: body.to_owned(),
    })
}
