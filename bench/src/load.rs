//! The load generator: N keep-alive HTTP/1 connections in a closed loop, each sending
//! `POST /logic` as soon as its previous reply arrived, for a fixed time.
//!
//! It is the same for the host and for the ceiling, so their figures compare: same client,
//! same connections, same request bodies. Latency is measured per request from just before
//! sending to the last byte of the reply, recorded in an HDR histogram (microseconds), and
//! only after a warm-up. Every reply's `ret` is read, so failures cannot hide behind a 200.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What the connections ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `1203`: the player's record; changes nothing.
    Read,
    /// `1201` with a new name each time: one committed write per request.
    Write,
    /// 80% `1203`, 15% `1101` (the mall's goods), 5% `1103` (buy one potion).
    Mixed,
    /// `Write` as the client SDK sends it: each request with an `Idempotency-Key` of its
    /// own, whose reply the host stores with the write. The stores section runs it.
    KeyedWrite,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Read, Workload::Write, Workload::Mixed];
    /// The stores section's: [`Workload::ALL`] and the keyed write, which stores a reply
    /// with each write.
    pub const STORES: [Workload; 4] = [
        Workload::Read,
        Workload::Write,
        Workload::KeyedWrite,
        Workload::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Mixed => "mixed",
            Workload::KeyedWrite => "write, keyed",
        }
    }

    /// The body of request number `seq` on a connection; `roll` is uniform in 0..100.
    fn body(self, seq: u64, roll: u64) -> Bytes {
        const RECORD: &str = r#"{"cmd":"1203","data":{}}"#;
        const GOODS: &str = r#"{"cmd":"1101","data":{}}"#;
        const BUY: &str = r#"{"cmd":"1103","data":{"id":"potion","count":1}}"#;
        match self {
            Workload::Read => Bytes::from_static(RECORD.as_bytes()),
            Workload::Write | Workload::KeyedWrite => Bytes::from(format!(
                r#"{{"cmd":"1201","data":{{"name":"bench-{seq}"}}}}"#
            )),
            Workload::Mixed => Bytes::from_static(match roll {
                0..80 => RECORD.as_bytes(),
                80..95 => GOODS.as_bytes(),
                _ => BUY.as_bytes(),
            }),
        }
    }
}

/// How one load run went.
#[derive(Debug)]
pub struct LoadRun {
    /// Replies received in the measured window (after the warm-up).
    pub requests: u64,
    pub seconds: f64,
    /// Latency of those replies, in microseconds.
    pub latency: Histogram<u64>,
    /// Replies whose HTTP status was not 2xx.
    pub non_2xx: u64,
    /// Replies with a negative `ret` (a host error), or no readable `ret`.
    pub negative_ret: u64,
    /// Replies with a positive `ret`: a game's refusal (such as not enough gold).
    pub refused: u64,
    /// Requests that got no reply at all (connection errors); each costs a reconnect.
    pub failed: u64,
}

impl LoadRun {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// A latency percentile (0..=100) in milliseconds.
    pub fn latency_ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_percentile(percentile) as f64 / 1000.0
    }

    fn merge(&mut self, other: &LoadRun) {
        self.requests += other.requests;
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.non_2xx += other.non_2xx;
        self.negative_ret += other.negative_ret;
        self.refused += other.refused;
        self.failed += other.failed;
    }

    fn empty(seconds: f64) -> LoadRun {
        LoadRun {
            requests: 0,
            seconds,
            // 1 µs to 60 s, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            non_2xx: 0,
            negative_ret: 0,
            refused: 0,
            failed: 0,
        }
    }
}

/// One load run's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Runs `workload` against `addr` with the players' `tokens` spread over the connections:
/// connection `c` cycles through players `c`, `c + connections`, … so that every player is
/// used and one player's commands rarely meet on two connections at once.
pub async fn run(
    addr: SocketAddr,
    workload: Workload,
    tokens: Arc<Vec<String>>,
    shape: Shape,
) -> LoadRun {
    let start = Instant::now();
    let measure_from = start + shape.warmup;
    let end = measure_from + shape.measure;
    let tasks: Vec<_> = (0..shape.connections)
        .map(|c| {
            let tokens = tokens.clone();
            tokio::spawn(async move {
                connection_loop(
                    addr,
                    workload,
                    &tokens,
                    c,
                    shape.connections,
                    measure_from,
                    end,
                )
                .await
            })
        })
        .collect();
    let mut total = LoadRun::empty(shape.measure.as_secs_f64());
    for task in tasks {
        total.merge(&task.await.expect("a load connection panicked"));
    }
    total
}

async fn connection_loop(
    addr: SocketAddr,
    workload: Workload,
    tokens: &[String],
    index: usize,
    stride: usize,
    measure_from: Instant,
    end: Instant,
) -> LoadRun {
    let mut run = LoadRun::empty(0.0);
    let bearers: Vec<HeaderValue> = tokens
        .iter()
        .skip(index % tokens.len().max(1))
        .step_by(stride)
        .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).expect("a token is ASCII"))
        .collect();
    let host = HeaderValue::from_str(&addr.to_string()).expect("an address is ASCII");
    // A small xorshift: the mix must be the same on every run, and needs no crate.
    let mut random = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1);
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut seq = 0u64;
    // Keys of this run's own: a key used again by the same player would be answered with
    // its stored reply (the players are the same in every round and workload).
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    while Instant::now() < end {
        let mut ready = match sender.take() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => s,
                Err(_) => {
                    run.failed += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        seq += 1;
        let mut request = Request::new(Full::new(workload.body(seq, random % 100)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = hyper::Uri::from_static("/logic");
        let headers = request.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !bearers.is_empty() {
            headers.insert(AUTHORIZATION, bearers[seq as usize % bearers.len()].clone());
        }
        if workload == Workload::KeyedWrite {
            let key = format!("bench-{run_id}-{index}-{seq}");
            let key = HeaderValue::from_str(&key).expect("a key is ASCII");
            headers.insert("idempotency-key", key);
        }
        let sent = Instant::now();
        let reply = match ready.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().collect().await {
                    Ok(body) => Some((status, body.to_bytes())),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let Some((status, body)) = reply else {
            if sent >= measure_from {
                run.failed += 1;
            }
            continue; // the connection is gone: reconnect
        };
        if sent >= measure_from && Instant::now() <= end {
            let micros = sent.elapsed().as_micros().max(1) as u64;
            run.latency.saturating_record(micros);
            run.requests += 1;
            if !status.is_success() {
                run.non_2xx += 1;
            }
            match ret_of(&body) {
                Some(0) => {}
                Some(ret) if ret > 0 => run.refused += 1,
                _ => run.negative_ret += 1,
            }
        }
        if ready.is_closed() {
            continue;
        }
        sender = Some(ready);
    }
    run
}

async fn connect(addr: SocketAddr) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.ready().await.map_err(std::io::Error::other)?;
    Ok(sender)
}

/// The `ret` of a reply body, if it is a protocol reply.
fn ret_of(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Envelope {
        ret: i64,
    }
    serde_json::from_slice::<Envelope>(body).ok().map(|e| e.ret)
}

/// One keep-alive connection for setup and checks (not for load): reconnects when needed.
pub struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Connection {
        Connection { addr, sender: None }
    }

    /// Sends `POST path` with `body`, and the token if any; returns the status and JSON reply.
    pub async fn post(
        &mut self,
        path: &'static str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        self.send(Method::POST, path, token, body.into()).await
    }

    /// Logs `account` in (`POST /login`); returns its session's token.
    pub async fn login(&mut self, account: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({ "account": account }).to_string();
        let (_, reply) = self.post("/login", None, body).await?;
        reply["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("login of {account} failed: {reply}"))
    }

    /// Sends `GET path`; returns the status and JSON reply.
    pub async fn get(&mut self, path: &'static str) -> anyhow::Result<(u16, serde_json::Value)> {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &'static str,
        token: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => connect(self.addr).await?,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        sender.ready().await?;
        let response = sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, serde_json::from_slice(&body)?))
    }
}

/// Logs in `count` players (accounts `bench-0` …) and returns their tokens.
pub async fn login_players(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<String>> {
    let mut connection = Connection::new(addr);
    let mut tokens = Vec::with_capacity(count);
    for n in 0..count {
        tokens.push(connection.login(&format!("bench-{n}")).await?);
    }
    Ok(tokens)
}
