//! The soak's hostile client: random malformed, oversized and garbage requests to `/login` and
//! `/logic`, bad tokens, slow or abandoned sends, and clients that hang up mid-request, each on
//! a connection of its own, written as raw bytes (an HTTP library would refuse to send most of
//! them).
//!
//! Each request is of a [`Kind`]. A well-formed kind is a valid HTTP request the host must
//! answer with the protocol's refusal for it (`ret` -4 for an oversized body, ...); a malformed
//! kind is not HTTP, and any answer but a hang will do (hyper's bare 400, or closing). No kind
//! may get a 5xx. The sequence comes from a fixed seed, so every run sends the same requests.
//!
//! Length: one arm per kind of hostile request and its bytes; the loop that sends them is short.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::hangup::{self, HangUp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The host's `server.body_limit` (the shipped profiles keep the default).
const BODY_LIMIT: usize = 1024 * 1024;
/// How long a reply may take before the request counts as unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a hostile request tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `/logic` with a valid token and random bytes as the body.
    GarbageBody,
    /// `/logic` with JSON that is not a valid envelope (types, lengths, nesting, truncation).
    BadEnvelope,
    /// `/logic` with a command no module serves.
    UnknownCommand,
    /// The mall's and the profile's commands with data their rules refuse.
    BadData,
    /// `/logic` with a random, empty or missing token.
    BadToken,
    /// `/login` with a body that is not a valid login.
    BadLogin,
    /// A declared body over the limit (only the headers are sent).
    Oversized,
    /// A chunked body over the limit (no length declared), sent in full.
    OversizedChunked,
    /// A wrong method or path.
    WrongRoute,
    /// A valid `1203` sent a few bytes at a time, over about a second.
    Slow,
    /// Random bytes instead of a request.
    GarbageHttp,
    /// A request line or headers that break HTTP (bad lengths, both framings, huge headers).
    BadHeaders,
    /// Headers and part of a body sent slowly, then the connection closed.
    Abandoned,
    /// A valid purchase or read, the connection closed right after sending it, during its
    /// turn, or as the reply arrives (`testkit::hangup`). Nothing to expect of these, but
    /// what they leave behind would fail the load's requests beside them.
    HangUp,
}

impl Kind {
    /// The kinds the fast loop picks from, uniformly (the slow ones have a loop of their own;
    /// a chunked body over the limit is a megabyte, so it is one pick in 40).
    const FAST: [Kind; 11] = [
        Kind::GarbageBody,
        Kind::BadEnvelope,
        Kind::UnknownCommand,
        Kind::BadData,
        Kind::BadToken,
        Kind::BadLogin,
        Kind::Oversized,
        Kind::WrongRoute,
        Kind::GarbageHttp,
        Kind::BadHeaders,
        Kind::HangUp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::GarbageBody => "garbage body",
            Kind::BadEnvelope => "bad envelope",
            Kind::UnknownCommand => "unknown command",
            Kind::BadData => "refused data",
            Kind::BadToken => "bad token",
            Kind::BadLogin => "bad login",
            Kind::Oversized => "oversized (declared)",
            Kind::OversizedChunked => "oversized (chunked)",
            Kind::WrongRoute => "wrong method or path",
            Kind::Slow => "slow but complete",
            Kind::GarbageHttp => "garbage bytes",
            Kind::BadHeaders => "broken HTTP",
            Kind::Abandoned => "abandoned mid-body",
            Kind::HangUp => "hung up mid-request",
        }
    }

    /// The `ret` codes a request of this kind must get, if it is well-formed HTTP.
    pub fn expects(self) -> Option<&'static [i64]> {
        match self {
            Kind::GarbageBody | Kind::BadEnvelope | Kind::BadLogin => Some(&[-2]),
            Kind::UnknownCommand => Some(&[-1]),
            Kind::BadData => Some(&[1, 2, 3]),
            Kind::BadToken => Some(&[-3]),
            Kind::Oversized | Kind::OversizedChunked => Some(&[-4]),
            Kind::WrongRoute => Some(&[-1, -2]),
            Kind::Slow => Some(&[0]),
            Kind::GarbageHttp | Kind::BadHeaders | Kind::Abandoned | Kind::HangUp => None,
        }
    }
}

/// How the host answered one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// A protocol reply: its `ret`.
    Ret(i64),
    /// An HTTP reply without a protocol body (hyper's own answer to broken HTTP): its status.
    Status(u16),
}

/// One kind's counts.
#[derive(Debug)]
pub struct KindFigures {
    pub kind: Kind,
    pub sent: u64,
    pub answers: BTreeMap<Answer, u64>,
    /// Closed or timed out without a reply (for [`Kind::Abandoned`]: the client left first).
    pub no_reply: u64,
    /// Replies with a 5xx status.
    pub server_errors: u64,
    /// Well-formed requests answered otherwise than [`Kind::expects`] says, or not at all.
    pub unexpected: u64,
    /// The first unexpected answer, as the host sent it (cut to 200 bytes).
    pub first_unexpected: Option<String>,
}

/// What the hostile client saw.
#[derive(Debug, Default)]
pub struct HostileFigures {
    pub kinds: BTreeMap<Kind, KindFigures>,
}

impl HostileFigures {
    pub fn sent(&self) -> u64 {
        self.kinds.values().map(|k| k.sent).sum()
    }

    /// Every reply, by `ret` (or status, for a reply without one).
    pub fn answers(&self) -> BTreeMap<Answer, u64> {
        let mut all = BTreeMap::new();
        for figures in self.kinds.values() {
            for (answer, n) in &figures.answers {
                *all.entry(*answer).or_default() += n;
            }
        }
        all
    }

    /// 5xx replies, and well-formed requests refused wrongly or dropped.
    pub fn failures(&self) -> u64 {
        self.kinds
            .values()
            .map(|k| k.server_errors + k.unexpected)
            .sum()
    }

    fn record(&mut self, kind: Kind, outcome: Outcome) {
        let figures = self.kinds.entry(kind).or_insert_with(|| KindFigures {
            kind,
            sent: 0,
            answers: BTreeMap::new(),
            no_reply: 0,
            server_errors: 0,
            unexpected: 0,
            first_unexpected: None,
        });
        figures.sent += 1;
        let answer = match &outcome {
            Outcome::Reply { status, answer, .. } => {
                *figures.answers.entry(*answer).or_default() += 1;
                if *status >= 500 {
                    figures.server_errors += 1;
                }
                Some(*answer)
            }
            Outcome::NoReply(_) => {
                figures.no_reply += 1;
                None
            }
        };
        let expected = match (kind.expects(), answer) {
            (None, _) => true,
            (Some(codes), Some(Answer::Ret(ret))) => codes.contains(&ret),
            (Some(_), _) => false,
        };
        if !expected {
            figures.unexpected += 1;
            if figures.first_unexpected.is_none() {
                figures.first_unexpected = Some(match outcome {
                    Outcome::Reply { raw, .. } => raw,
                    Outcome::NoReply(why) => why,
                });
            }
        }
    }
}

/// Sends hostile requests to `addr` until `end`: a fast loop (a pause of `pause` between
/// requests) and a slow loop beside it. `token` is a valid session of a player of its own.
pub async fn run(addr: SocketAddr, token: String, end: Instant, pause: Duration) -> HostileFigures {
    let fast = {
        let token = token.clone();
        async move {
            let mut figures = HostileFigures::default();
            let mut random = Random(0x05EE_D0FB_ADC0_FFEE);
            while Instant::now() < end {
                let kind = if random.below(40) == 0 {
                    Kind::OversizedChunked
                } else {
                    Kind::FAST[random.below(Kind::FAST.len())]
                };
                let request = request(kind, &token, addr, &mut random);
                figures.record(kind, exchange(addr, request).await);
                tokio::time::sleep(pause).await;
            }
            figures
        }
    };
    let slow = async move {
        let mut figures = HostileFigures::default();
        let mut random = Random(0x51_0B0D_1E5E_ED01);
        let mut n = 0u64;
        while Instant::now() < end {
            let kind = if n.is_multiple_of(2) {
                Kind::Slow
            } else {
                Kind::Abandoned
            };
            n += 1;
            let request = request(kind, &token, addr, &mut random);
            figures.record(kind, exchange(addr, request).await);
        }
        figures
    };
    let (mut figures, slow) = tokio::join!(fast, slow);
    figures.kinds.extend(slow.kinds);
    figures
}

/// The bytes of one request, how they are sent, and what the client does after.
struct Request {
    pieces: Vec<Vec<u8>>,
    /// Between pieces.
    pause: Duration,
    after: After,
}

enum After {
    /// Read the reply (the request says `Connection: close`).
    Read,
    /// Close the sending side (the host reads the end of the stream), then read.
    HalfClose,
    /// Close the connection without reading.
    Leave,
    /// Send it whole, then close as the client that hangs up does.
    HangUp(HangUp),
}

enum Outcome {
    Reply {
        status: u16,
        answer: Answer,
        /// The reply's first bytes, for the report of an unexpected one.
        raw: String,
    },
    NoReply(String),
}

/// A small xorshift: the same sequence on every run, and no crate for it.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A `POST` with `Connection: close`, the `Authorization` value if any, and `body`.
fn post(path: &str, auth: Option<&str>, body: &[u8], addr: SocketAddr) -> Vec<u8> {
    hangup::post_bytes(addr, path, auth, body)
}

/// The soak's modules' prefixes (the demo's: activity, mall, player, social).
const SERVED_PREFIXES: [&str; 4] = ["10", "11", "12", "13"];

/// A command no module of the soak has: in a prefix none of [`SERVED_PREFIXES`], or one the
/// mall does not have. (When the social module took `13`, draws from 13 on made two of a
/// run's "unknown" commands social's, refused by it with 99.)
fn unknown_command(random: &mut Random) -> String {
    match random.below(3) {
        0 => format!("99{:02}", random.below(100)),
        1 => "1199".to_owned(),
        _ => loop {
            let cmd = format!("{:02}{:02}", 10 + random.below(83), random.below(100));
            if !SERVED_PREFIXES.contains(&&cmd[..2]) {
                break cmd;
            }
        },
    }
}

fn request(kind: Kind, token: &str, addr: SocketAddr, random: &mut Random) -> Request {
    let bearer = format!("Bearer {token}");
    let logic = |body: &[u8]| post("/logic", Some(&bearer), body, addr);
    let whole = |bytes: Vec<u8>| Request {
        pieces: vec![bytes],
        pause: Duration::ZERO,
        after: After::Read,
    };
    match kind {
        Kind::GarbageBody => {
            let len = 1 + random.below(2000);
            whole(logic(&random.bytes(len)))
        }
        Kind::BadEnvelope => whole(logic(&bad_envelope(random))),
        Kind::UnknownCommand => {
            let cmd = unknown_command(random);
            whole(logic(format!(r#"{{"cmd":"{cmd}"}}"#).as_bytes()))
        }
        Kind::BadData => {
            let long_name = "n".repeat(33);
            let body = random
                .pick(&[
                    r#"{"cmd":"1103","data":{"id":"dragon","count":1}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":7,"count":1}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":"potion","count":0}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":"potion","count":100}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":"potion","count":-5}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":"potion","count":"x"}}"#.to_owned(),
                    r#"{"cmd":"1103","data":{"id":"potion","count":1e300}}"#.to_owned(),
                    r#"{"cmd":"1201","data":{"name":""}}"#.to_owned(),
                    r#"{"cmd":"1201","data":{"name":5}}"#.to_owned(),
                    format!(r#"{{"cmd":"1201","data":{{"name":"{long_name}"}}}}"#),
                ])
                .clone();
            whole(logic(body.as_bytes()))
        }
        Kind::BadToken => {
            let random_token = hex(&random.bytes(32));
            let auth = random
                .pick(&[
                    Some(format!("Bearer {random_token}")),
                    Some("Bearer ".to_owned()),
                    Some(format!("Basic {random_token}")),
                    Some(format!("Bearer {}", &token[..token.len() - 1])),
                    None,
                ])
                .clone();
            whole(post("/logic", auth.as_deref(), br#"{"cmd":"1203"}"#, addr))
        }
        Kind::BadLogin => whole(post("/login", None, &bad_login(random), addr)),
        Kind::Oversized => {
            let path = random.pick(&["/logic", "/login"]);
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                BODY_LIMIT + 1 + random.below(1 << 30)
            );
            whole(head.into_bytes())
        }
        Kind::OversizedChunked => {
            let head = format!(
                "POST /logic HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            let mut pieces = vec![head.into_bytes()];
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..(BODY_LIMIT / chunk.len() + 2) {
                let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
                piece.extend_from_slice(&chunk);
                piece.extend_from_slice(b"\r\n");
                pieces.push(piece);
            }
            pieces.push(b"0\r\n\r\n".to_vec());
            Request {
                pieces,
                pause: Duration::ZERO,
                after: After::Read,
            }
        }
        Kind::WrongRoute => {
            let (method, path) = *random.pick(&[
                ("GET", "/logic"),
                ("PUT", "/login"),
                ("DELETE", "/logic"),
                ("POST", "/nope"),
                ("POST", "/logic/1203"),
                ("POST", "/admin/modules"),
            ]);
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\
                 Connection: close\r\n\r\n{{}}"
            );
            whole(head.into_bytes())
        }
        Kind::Slow => {
            let bytes = logic(br#"{"cmd":"1203","data":{}}"#);
            Request {
                pieces: bytes
                    .chunks(bytes.len() / 8 + 1)
                    .map(<[u8]>::to_vec)
                    .collect(),
                pause: Duration::from_millis(60 + random.below(60) as u64),
                after: After::Read,
            }
        }
        Kind::GarbageHttp => {
            let len = 1 + random.below(512);
            Request {
                pieces: vec![random.bytes(len)],
                pause: Duration::ZERO,
                after: After::HalfClose,
            }
        }
        Kind::BadHeaders => Request {
            pieces: vec![broken_http(random, &bearer, addr)],
            pause: Duration::ZERO,
            after: After::HalfClose,
        },
        Kind::HangUp => {
            let body = random.pick(&[
                r#"{"cmd":"1103","data":{"id":"potion","count":1}}"#,
                r#"{"cmd":"1203"}"#,
            ]);
            Request {
                pieces: vec![logic(body.as_bytes())],
                pause: Duration::ZERO,
                after: After::HangUp(HangUp::pick(random.next(), Duration::from_millis(3))),
            }
        }
        Kind::Abandoned => {
            let head = format!(
                "POST /logic HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\n\
                 Content-Length: 200\r\n\r\n{{\"cmd\":\"1203\","
            );
            let bytes = head.into_bytes();
            Request {
                pieces: bytes
                    .chunks(bytes.len() / 3 + 1)
                    .map(<[u8]>::to_vec)
                    .collect(),
                pause: Duration::from_millis(100 + random.below(200) as u64),
                after: After::Leave,
            }
        }
    }
}

fn bad_envelope(random: &mut Random) -> Vec<u8> {
    let deep = |open: &str, close: &str, depth: usize| {
        format!(
            r#"{{"cmd":"1203","data":{{"x":{}{}}}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        )
    };
    let text = random
        .pick(&[
            r#"{"cmd":1203}"#.to_owned(),
            r#"{"cmd":"12034"}"#.to_owned(),
            r#"{"cmd":"12a3"}"#.to_owned(),
            r#"{"cmd":""}"#.to_owned(),
            r#"{"cmd":"１２０３"}"#.to_owned(),
            r#"{"data":{}}"#.to_owned(),
            r#"{"cmd":"1203","data":[1]}"#.to_owned(),
            r#"{"cmd":"1203","data":"x"}"#.to_owned(),
            r#"{"cmd":"12"#.to_owned(),
            "[]".to_owned(),
            "null".to_owned(),
            "1e999999".to_owned(),
            "\u{feff}".to_owned(),
            deep("[", "]", 100_000),
            deep("{\"a\":", "}", 50_000),
        ])
        .clone();
    let mut bytes = text.into_bytes();
    if random.below(8) == 0 {
        // Not UTF-8.
        bytes.extend_from_slice(&[0xff, 0xfe, 0xc0]);
    }
    bytes
}

fn bad_login(random: &mut Random) -> Vec<u8> {
    let long = "a".repeat(65);
    let len = 1 + random.below(300);
    let garbage = random.bytes(len);
    random
        .pick(&[
            b"{}".to_vec(),
            br#"{"account":""}"#.to_vec(),
            br#"{"account":"a b"}"#.to_vec(),
            br#"{"account":"\u00fc"}"#.to_vec(),
            br#"{"account":5}"#.to_vec(),
            br#"{"account":"ok","name":7}"#.to_vec(),
            format!(r#"{{"account":"{long}"}}"#).into_bytes(),
            b"[]".to_vec(),
            garbage,
        ])
        .clone()
}

fn broken_http(random: &mut Random, bearer: &str, addr: SocketAddr) -> Vec<u8> {
    let body = r#"{"cmd":"1203"}"#;
    let head = format!("POST /logic HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\n");
    let many: String = (0..200).map(|n| format!("X-Header-{n}: {n}\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "h".repeat(200_000));
    let text = random
        .pick(&[
            format!("{head}Content-Length: abc\r\n\r\n{body}"),
            format!("{head}Content-Length: 14\r\nContent-Length: 3\r\n\r\n{body}"),
            format!("{head}Content-Length: 14\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
            format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"),
            format!("{head}No colon here\r\nContent-Length: 14\r\n\r\n{body}"),
            format!("{head}Bad Name: x\r\nContent-Length: 14\r\n\r\n{body}"),
            format!("{head}{many}Content-Length: 14\r\n\r\n{body}"),
            format!("{head}{huge}Content-Length: 14\r\n\r\n{body}"),
            format!("POST  /logic HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            format!("POST /logic HTTP/9.9\r\nHost: {addr}\r\nContent-Length: 14\r\n\r\n{body}"),
            format!("POST /lo\0gic HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            format!("{head}Content-Length: 99999999999999999999999\r\n\r\n{body}"),
        ])
        .clone();
    text.into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `request` on a new connection and reads what comes back until the host closes it
/// (or [`REPLY_TIMEOUT`]). The sending runs beside the reading: a host that answers before
/// the whole body arrived (an oversized one) is heard.
async fn exchange(addr: SocketAddr, request: Request) -> Outcome {
    if let After::HangUp(hang_up) = request.after {
        return match hangup::send(addr, &request.pieces.concat(), hang_up).await {
            Ok(Some(reply)) => outcome(
                reply.status,
                &reply.body,
                reply.body.chars().take(200).collect(),
            ),
            Ok(None) => Outcome::NoReply("hung up by the client".into()),
            Err(e) => Outcome::NoReply(format!("connect or send: {e}")),
        };
    }
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return Outcome::NoReply(format!("connect: {e}")),
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.split();
    let after = request.after;
    let send = async {
        for (n, piece) in request.pieces.iter().enumerate() {
            if n > 0 && !request.pause.is_zero() {
                tokio::time::sleep(request.pause).await;
            }
            if writer.write_all(piece).await.is_err() {
                return;
            }
        }
        if matches!(after, After::HalfClose) {
            let _ = writer.shutdown().await;
        }
    };
    if matches!(after, After::Leave) {
        send.await;
        return Outcome::NoReply("left by the client".into());
    }
    let mut received = Vec::new();
    let receive = tokio::time::timeout(REPLY_TIMEOUT, reader.read_to_end(&mut received));
    let ((), read) = tokio::join!(send, receive);
    let why = match read {
        Ok(Ok(_)) => "closed",
        // A reset after the reply arrived still leaves the reply.
        Ok(Err(_)) => "reset",
        Err(_) => "timed out",
    };
    parse_reply(&received).unwrap_or_else(|| Outcome::NoReply(format!("{why} without a reply")))
}

/// The status and the protocol `ret` of a whole HTTP reply.
fn parse_reply(bytes: &[u8]) -> Option<Outcome> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(outcome(status, body, text.chars().take(200).collect()))
}

/// A reply's outcome: its status, and its protocol `ret` if the body has one.
fn outcome(status: u16, body: &str, raw: String) -> Outcome {
    let ret = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|reply| reply["ret"].as_i64());
    let answer = ret.map_or(Answer::Status(status), Answer::Ret);
    Outcome::Reply {
        status,
        answer,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soak's host serves the demo modules ([`testkit::DEMO_MODULES`]): their prefixes,
    /// read from their sources, are [`SERVED_PREFIXES`], so that a module added to the demo
    /// cannot make an "unknown" command known.
    #[test]
    fn the_served_prefixes_are_the_demo_modules() {
        let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        let mut prefixes: Vec<String> = testkit::DEMO_MODULES
            .iter()
            .map(|module| {
                let source = plugins.join(module).join("src/lib.rs");
                let text = std::fs::read_to_string(&source).unwrap();
                let (_, after) = text.split_once("prefix: \"").expect("a prefix");
                after[..2].to_owned()
            })
            .collect();
        prefixes.sort();
        assert_eq!(prefixes, SERVED_PREFIXES);
    }

    #[test]
    fn unknown_commands_are_in_no_served_prefix() {
        let mut random = Random(0x51_0B0D_1E5E_ED01);
        for _ in 0..10_000 {
            let cmd = unknown_command(&mut random);
            assert_eq!(cmd.len(), 4, "{cmd}");
            assert!(
                !SERVED_PREFIXES.contains(&&cmd[..2]) || cmd == "1199",
                "{cmd}"
            );
        }
    }
}
