//! The WebSocket channel, `GET /ws` (docs/PROTOCOL.md, "The socket"): one long-lived
//! connection per client, over which it sends the commands of `POST /logic`.
//!
//! The path: [`crate::http`] routes `GET /ws` to [`open`], which checks the upgrade headers,
//! answers 101 and, once hyper hands the connection over, runs the socket's task
//! ([`conversation`]): the first message names the session ([`hello`]), then each text message
//! is a command ([`command`]) run in a task of its own, whose reply goes back through the
//! socket's bounded queue. The task ends when the client closes, a limit is crossed
//! ([`close`] has every reason and its code) or the host shuts down.
//!
//! The socket belongs to the host, not to a module: a hot swap changes which version runs its
//! next command and nothing else. [`WebSockets`] is the host's set of open sockets: the cap
//! (`socket.max_sockets`), the signal that closes them all with 1001 when the host stops or
//! hands over to a successor, and their tasks, which shutdown waits for.
//!
//! The library is tokio-tungstenite over hyper's upgraded connection (host/Cargo.toml says
//! why). The connection keeps the listener's write timeout ([`crate::listener`]), so a client
//! that stops reading is cut off there too.

mod close;
mod command;
mod conversation;
mod hello;
mod outbox;
mod rate;

pub(crate) use close::Close;
pub(crate) use outbox::{Delivery, Outbox, Outgoing};

use crate::config::SocketConfig;
use crate::error::ApiError;
use crate::http::Reply;
use crate::state::AppState;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, CONNECTION, UPGRADE};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The path of the socket.
pub const PATH: &str = "/ws";

/// The read buffer of each socket, allocated when it opens. Commands are small; a larger
/// message is read through it in more reads (up to `socket.max_message_bytes`). 1 KiB rather
/// than 2 takes an idle socket from about 10 to 8.6 KB of the host's memory (`make bench`).
const READ_BUFFER_BYTES: usize = 1 << 10;

/// The host's open sockets.
pub struct WebSockets {
    /// One permit per socket that may open (`socket.max_sockets`).
    admitted: Arc<Semaphore>,
    /// Cancelled when the host stops accepting: every socket closes with 1001.
    going_away: CancellationToken,
    /// Every socket's task, from the upgrade to the close.
    tasks: TaskTracker,
}

impl WebSockets {
    pub fn new(config: &SocketConfig) -> WebSockets {
        WebSockets {
            admitted: Arc::new(Semaphore::new(config.max_sockets)),
            going_away: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Sockets open now (their tasks, from the upgrade to the close).
    pub fn open(&self) -> usize {
        self.tasks.len()
    }

    /// Closes every socket with 1001 ("going away"), after its commands in flight are
    /// answered. Sockets opened afterwards close at once the same way.
    pub fn close_all(&self) {
        self.going_away.cancel();
        self.tasks.close();
    }

    /// Waits until every socket has closed ([`WebSockets::close_all`] first).
    pub async fn closed(&self) {
        self.tasks.wait().await;
    }

    /// A place for one more socket, or `None` at `socket.max_sockets`.
    fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.admitted.clone().try_acquire_owned().ok()
    }
}

/// `GET /ws`: answers 101 to a WebSocket upgrade and starts the socket's task; anything else
/// is the client's error.
pub(crate) fn open(state: &AppState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let key = upgrade_key(request.headers()).ok_or_else(|| {
        ApiError::BadRequest(
            "`/ws` is a WebSocket: open it with the upgrade headers (new WebSocket(\"…/ws\") in a browser), version 13".into(),
        )
    })?;
    if state.is_shutting_down() {
        // A socket opened now would be closed at once: the client goes to the successor
        // (during a restart) or another host instead.
        return Err(ApiError::Unavailable {
            msg:
                "the host is shutting down: open the socket again (on another host, or in a moment)"
                    .into(),
            detail: "socket refused during shutdown".into(),
        });
    }
    let accept = derive_accept_key(key.as_bytes());
    let admitted = state.websockets.admit();
    let on_upgrade = hyper::upgrade::on(request);
    let task_state = state.clone();
    state.websockets.tasks.spawn(async move {
        // The client may hang up before the switch completes: then there is no socket.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = tungstenite_config(&task_state.config.socket);
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        conversation::serve(task_state, socket, admitted).await;
    });
    Ok(Reply::switching_protocols(accept))
}

/// The client's `Sec-WebSocket-Key`, if the request is a version 13 WebSocket upgrade
/// (RFC 6455, 4.2.1).
fn upgrade_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let version = headers.get("sec-websocket-version")?;
    let key = headers.get("sec-websocket-key")?.to_str().ok()?.trim();
    let upgrade = has_token(UPGRADE, "websocket") && has_token(CONNECTION, "upgrade");
    (upgrade && version == "13" && !key.is_empty()).then(|| key.to_owned())
}

/// The socket's limits as tungstenite applies them: messages and frames up to
/// `socket.max_message_bytes` (a larger one ends the socket with 1009), a small read buffer,
/// and each message written out at once.
fn tungstenite_config(config: &SocketConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes))
}

#[cfg(test)]
mod tests {
    use super::upgrade_key;
    use hyper::header::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a valid header value"));
        }
        map
    }

    #[test]
    fn an_upgrade_needs_every_header_of_rfc_6455() {
        let browser = [
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            upgrade_key(&headers(&browser)).as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        for missing in 0..browser.len() {
            let mut some = browser.to_vec();
            some.remove(missing);
            assert_eq!(
                upgrade_key(&headers(&some)),
                None,
                "without {:?}",
                browser[missing]
            );
        }
        let mut old = browser;
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(upgrade_key(&headers(&old)), None);
    }
}
