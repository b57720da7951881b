//! [`FuzzHost`]: one real host in this process, started at the first input and kept for the
//! whole run, and the HTTP client that sends each input to it.
//!
//! It is started as the host's tests start one, with `testkit`: an [`InProcessHost`] on a
//! config pointing at temporary [`Folders`] (plugins, SQLite database, logs), a clock that
//! never moves, serving on `127.0.0.1:0`. Everything runs on one current-thread tokio runtime
//! that only runs while an input is being sent, so inputs never overlap; the store's thread and
//! the module threads are the host's own.

use bytes::Bytes;
use host::clock::ManualClock;
use host::state::AppState;
use host::{Config, Deps};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper::http::response::Parts;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use testkit::in_process::InProcessHost;
use testkit::Folders;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// 2026-11-25T12:00:00Z. The host clock stands still: every input meets the same day.
pub const NOW_MS: i64 = testkit::NOON_MS;

/// The fuzzed host's `server.body_limit`: small enough that inputs cross it (-4, 413), large
/// enough for every valid body (a login with a 1024-character `head_img`).
pub const BODY_LIMIT: usize = 2048;

/// Each fuzzing process works in a folder `<temp>/game-host-fuzz-<pid>-<random>`.
const DIR_PREFIX: &str = "game-host-fuzz-";

/// One reply, checked to be what every reply must be: a JSON object with an integer `ret`,
/// sent as `application/json`.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as sent.
    pub text: String,
    pub body: Map<String, Value>,
    pub ret: i64,
}

/// A running host and a keep-alive connection to it.
pub struct FuzzHost {
    runtime: Runtime,
    /// Serves until the process ends (libFuzzer exits without dropping anything).
    host: InProcessHost,
    addr: SocketAddr,
    connection: Option<SendRequest<Full<Bytes>>>,
    folders: Folders,
}

/// The demo modules whose rules `expect.rs` models; any other command must answer -1. (The
/// demo module `social` changes other players and pushes: a single player's model has no
/// account to give to.)
const MODELLED_MODULES: [&str; 3] = ["activity", "mall", "player"];

impl FuzzHost {
    /// Starts a host serving the demo modules the model knows; panics if it cannot.
    pub fn start() -> FuzzHost {
        remove_stale_dirs();
        let root = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("a temporary folder");
        let folders = Folders::in_root(root).expect("the plugins folder");
        for module in MODELLED_MODULES {
            folders
                .install(&library(module))
                .expect("copy a module library");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let host = runtime.block_on(serve(config(&folders)));
        FuzzHost {
            runtime,
            addr: host.addr,
            host,
            connection: None,
            folders,
        }
    }

    /// The host's shared state (its store, for reading and resetting the player).
    pub fn state(&self) -> &AppState {
        &self.host.state
    }

    /// The host's folder: no reply may name it.
    pub fn root(&self) -> &Path {
        self.folders.root.path()
    }

    /// Runs `future` on the host's runtime (store calls; the host serves meanwhile).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `POST path` with `body`, and the token as a bearer if given. Panics if the reply is not a
    /// JSON object with an integer `ret` sent as `application/json`.
    pub fn post(&mut self, path: &str, body: &[u8], token: Option<&str>) -> Reply {
        let body = Bytes::copy_from_slice(body);
        let request = || {
            let mut request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(HOST, self.addr.to_string())
                .header(CONTENT_TYPE, "application/json");
            if let Some(token) = token {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            request.body(Full::new(body.clone())).expect("a request")
        };
        let (addr, reused) = (self.addr, self.connection.take());
        let (sender, parts, bytes) = self.runtime.block_on(async move {
            let first = request();
            if let Some(mut sender) = reused.filter(|s| !s.is_closed()) {
                // A kept-alive connection the host closed in between (its header timeout): the
                // request never reached it, so it is sent again on a new connection.
                if sender.ready().await.is_ok() {
                    if let Ok(response) = sender.send_request(first).await {
                        let (parts, bytes) = read(response).await;
                        return (sender, parts, bytes);
                    }
                }
            }
            let mut sender = connect(addr).await;
            let response = sender
                .send_request(request())
                .await
                .unwrap_or_else(|e| panic!("no reply to POST {path}: {e}"));
            let (parts, bytes) = read(response).await;
            (sender, parts, bytes)
        });
        let closes = parts
            .headers
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if !closes {
            self.connection = Some(sender);
        }
        checked_reply(path, parts.status.as_u16(), parts.headers, &bytes)
    }
}

/// The host's config: the defaults, on `folders`, with the fuzz body limit, no watcher and no
/// admin listener.
fn config(folders: &Folders) -> Config {
    let mut config = folders.config();
    config.server.body_limit = BODY_LIMIT;
    config.server.host_id = "fuzz".into();
    config.plugins.watch = false;
    config.admin.listen = None;
    config
}

/// Starts the host with the still clock; panics unless it serves the demo modules.
async fn serve(config: Config) -> InProcessHost {
    let mut deps = Deps::new(host::logging::discard());
    deps.clock = Arc::new(ManualClock::new(NOW_MS));
    let host = InProcessHost::start(config, deps)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        host.scan.refused.is_empty() && host.scan.loaded.len() == MODELLED_MODULES.len(),
        "the host did not load the demo modules: {:?}",
        host.scan
    );
    host
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect to the host");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1 connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

async fn read(response: hyper::Response<hyper::body::Incoming>) -> (Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("the reply body").to_bytes();
    (parts, bytes)
}

fn checked_reply(path: &str, status: u16, headers: HeaderMap, bytes: &[u8]) -> Reply {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|_| panic!("POST {path} -> {status}: the reply is not UTF-8"));
    assert_eq!(
        headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "POST {path} -> {status}: not sent as JSON: {text}"
    );
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(body)) => body,
        _ => panic!("POST {path} -> {status}: the reply is not a JSON object: {text}"),
    };
    let ret = body
        .get("ret")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("POST {path} -> {status}: no integer `ret`: {text}"));
    Reply {
        status,
        headers,
        text,
        body,
        ret,
    }
}

/// Where the workspace's debug build put `lib<module>.so`: `GAME_FUZZ_MODULES_DIR`, else
/// `$CARGO_TARGET_DIR/debug`, else `target/debug` at the top of the repository.
fn library(module: &str) -> PathBuf {
    let dir = std::env::var_os("GAME_FUZZ_MODULES_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("debug")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let path = dir.join(format!("lib{module}.so"));
    assert!(
        path.is_file(),
        "{} is missing: build the demo modules first (`cargo build -p activity -p mall -p player` \
         at the top of the repository; fuzz/run.sh does)",
        path.display()
    );
    path
}

/// Removes the folders of fuzzing processes that have ended (libFuzzer exits without running
/// destructors, so each process leaves its folder: the database and three module copies).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        let ended = !pid.is_empty() && !Path::new("/proc").join(pid).exists();
        if ended {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
