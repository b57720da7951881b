//! The load generator's side of `GET /ws`: a socket opened as a player (its token as the first
//! message, the host's welcome read), then a task per socket that reads everything the host
//! sends and hands it, stamped with the moment it was read, to one [`Inbox`] shared by all the
//! sockets of a run. The sections send on a socket through its [`Socket`] (the write half).
//!
//! Pings are answered by tokio-tungstenite as the reader reads on, as a browser answers them.
//! The client's buffers are small (4 KiB to read, nothing kept to write): ten thousand sockets
//! in this process would otherwise hold 128 KiB each.

use anyhow::{anyhow, bail, Context};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the host may take to answer the upgrade and the first message.
const WELCOME_WITHIN: Duration = Duration::from_secs(30);
/// The client's read buffer per socket.
const READ_BUFFER_BYTES: usize = 4 << 10;

/// Something a socket read, and when.
#[derive(Debug)]
pub struct Heard {
    /// The socket's number in its run.
    pub socket: usize,
    /// When the reader had it.
    pub at: Instant,
    pub what: What,
}

#[derive(Debug, PartialEq, Eq)]
pub enum What {
    /// A command's reply: `{"cid": …, "ret": …}`.
    Reply { cid: u64, ret: i64 },
    /// A push: its kind and its data's `text` (empty if it has none).
    Push { kind: String, text: String },
    /// The socket closed: the host's close code, if it sent one.
    Closed(Option<u16>),
    /// Any other text (a refusal without `cid`), as it came.
    Other(String),
}

impl What {
    fn parse(text: &str) -> What {
        #[derive(Deserialize)]
        struct Incoming {
            cid: Option<u64>,
            ret: Option<i64>,
            push: Option<String>,
            data: Option<Data>,
        }
        #[derive(Deserialize)]
        struct Data {
            text: Option<String>,
        }
        match serde_json::from_str::<Incoming>(text) {
            Ok(Incoming {
                push: Some(kind),
                data,
                ..
            }) => What::Push {
                kind,
                text: data.and_then(|d| d.text).unwrap_or_default(),
            },
            Ok(Incoming {
                cid: Some(cid),
                ret: Some(ret),
                ..
            }) => What::Reply { cid, ret },
            _ => What::Other(text.to_owned()),
        }
    }
}

/// A socket open as a player: its write half here, its read half in a task that hands what
/// it reads to the run's [`Inbox`]. Dropped, both halves go and the connection closes.
pub struct Socket {
    sink: SplitSink<Ws, Message>,
    reader: JoinHandle<()>,
}

impl Socket {
    /// Opens `GET /ws` on `addr`, sends `{"token": token}` and waits for the host's welcome
    /// (`ret` 0); then reads on in a task of its own, as socket number `index` of `inbox`.
    pub async fn open(
        addr: SocketAddr,
        token: &str,
        index: usize,
        inbox: &mpsc::UnboundedSender<Heard>,
    ) -> anyhow::Result<Socket> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0);
        let url = format!("ws://{addr}/ws");
        let opened = async {
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
            let hello = serde_json::json!({ "token": token }).to_string();
            ws.send(Message::text(hello)).await?;
            welcome(&mut ws).await?;
            anyhow::Ok(ws)
        };
        let ws = tokio::time::timeout(WELCOME_WITHIN, opened)
            .await
            .map_err(|_| anyhow!("no welcome within {} s", WELCOME_WITHIN.as_secs()))?
            .context("opening a socket")?;
        let (sink, stream) = ws.split();
        let reader = tokio::spawn(read(index, stream, inbox.clone()));
        Ok(Socket { sink, reader })
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.sink.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends command `cmd` with `data` as `{"cid", "cmd", "data"}`.
    pub async fn command(
        &mut self,
        cid: u64,
        cmd: &str,
        data: serde_json::Value,
    ) -> anyhow::Result<()> {
        let message = serde_json::json!({ "cid": cid, "cmd": cmd, "data": data });
        self.send(message.to_string()).await
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The first text message after the token: it must be `{"ret": 0, …}`.
async fn welcome(ws: &mut Ws) -> anyhow::Result<()> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let reply: serde_json::Value = serde_json::from_str(&text)?;
                if reply["ret"] != 0 {
                    bail!("the host refused the token: {text}");
                }
                return Ok(());
            }
            Some(Ok(Message::Close(frame))) => bail!("closed before the welcome: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the connection ended before the welcome"),
        }
    }
}

/// The reader: every text message, then the close, to `inbox`.
async fn read(index: usize, mut stream: SplitStream<Ws>, inbox: mpsc::UnboundedSender<Heard>) {
    loop {
        let frame = stream.next().await;
        let at = Instant::now();
        let what = match frame {
            Some(Ok(Message::Text(text))) => What::parse(&text),
            Some(Ok(Message::Close(frame))) => What::Closed(frame.map(|f| u16::from(f.code))),
            // Pings (answered on the next read), pongs, binary: nothing the host sends here.
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => What::Closed(None),
        };
        let closed = matches!(what, What::Closed(_));
        let _ = inbox.send(Heard {
            socket: index,
            at,
            what,
        });
        if closed {
            return;
        }
    }
}

/// What every socket of a run read, in the order read, with the sockets that closed counted
/// on the way (by close code; `None`: no close frame).
pub struct Inbox {
    heard: mpsc::UnboundedReceiver<Heard>,
    pub closed: BTreeMap<Option<u16>, usize>,
}

impl Inbox {
    /// An inbox, and where its sockets send.
    pub fn new() -> (mpsc::UnboundedSender<Heard>, Inbox) {
        let (tx, heard) = mpsc::unbounded_channel();
        (
            tx,
            Inbox {
                heard,
                closed: BTreeMap::new(),
            },
        )
    }

    /// The next thing read that is not a close, waiting until `deadline` at most.
    pub async fn next_until(&mut self, deadline: Instant) -> Option<Heard> {
        loop {
            let heard = tokio::time::timeout_at(deadline.into(), self.heard.recv())
                .await
                .ok()??;
            match heard.what {
                What::Closed(code) => *self.closed.entry(code).or_default() += 1,
                _ => return Some(heard),
            }
        }
    }

    /// What has been read already, without waiting.
    pub fn ready(&mut self) -> Option<Heard> {
        loop {
            let heard = self.heard.try_recv().ok()?;
            match heard.what {
                What::Closed(code) => *self.closed.entry(code).or_default() += 1,
                _ => return Some(heard),
            }
        }
    }

    /// Sockets closed so far, for any reason.
    pub fn closed_count(&self) -> usize {
        self.closed.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::What;

    #[test]
    fn replies_and_pushes_are_told_apart() {
        assert_eq!(
            What::parse(r#"{"cid":7,"ret":0,"cmd":"1306","data":{"rooms":["bench"]}}"#),
            What::Reply { cid: 7, ret: 0 }
        );
        assert_eq!(
            What::parse(r#"{"push":"say","id":42,"data":{"room":"bench","from":"a","text":"r1"}}"#),
            What::Push {
                kind: "say".into(),
                text: "r1".into()
            }
        );
        assert_eq!(
            What::parse(r#"{"ret":-2,"msg":"no cid"}"#),
            What::Other(r#"{"ret":-2,"msg":"no cid"}"#.into())
        );
    }
}
