//! `TestHost`: a real host in this process ([`InProcessHost`]) on `127.0.0.1:0`, with temporary
//! plugin, data and log folders ([`Dirs`]), a clock the test controls, and an HTTP client.
//! Stopping it (or dropping it) shuts it down. Also where the tests find the workspace's
//! libraries and the `game-host` binary.

#![allow(dead_code)] // each test module uses a different part of the harness

use host::clock::ManualClock;
use host::{Config, Deps};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use testkit::in_process::InProcessHost;
use testkit::Folders;

pub use testkit::{DEMO_MODULES, NOON_MS};

pub const DAY_MS: i64 = 86_400_000;

/// The workspace's build output folder, where the module libraries are.
pub fn target_dir() -> PathBuf {
    // The test binary is target/<profile>/deps/it-<hash>.
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned()
}

/// The library of workspace crate `crate_name` (`mall`, `fixture_faulty`, ...).
pub fn library(crate_name: &str) -> PathBuf {
    let path = target_dir().join(format!("lib{crate_name}.so"));
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`, which `make test` does)",
        path.display()
    );
    path
}

/// The real `game-host` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_game-host"))
}

/// The shipped profiles (`config/`).
pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");

/// `game-host serve` on `dirs` ([`testkit::served::serve_command`]): both listeners on ports
/// the system picks, stdout piped (its first line is `listening on <addr>`), stderr discarded.
pub fn serve_command(dirs: &Dirs) -> std::process::Command {
    testkit::served::serve_command(&binary(), Path::new(CONFIG_DIR), dirs)
}

/// Folders a host runs in ([`testkit::Folders`]); kept across a restart.
pub struct Dirs(Folders);

impl Dirs {
    pub fn new() -> Dirs {
        Dirs(Folders::new().expect("temp dir"))
    }

    /// Copies the library of `crate_name` into the plugins folder as `lib<crate_name>.so`.
    pub fn install(&self, crate_name: &str) -> PathBuf {
        self.0.install(&library(crate_name)).expect("copy library")
    }

    /// A config pointing at these folders, with test-friendly defaults.
    pub fn config(&self) -> Config {
        let mut config = self.0.config();
        config.server.shutdown_grace_secs = 5;
        config.server.host_id = "test-host".into();
        config.plugins.workers = 4;
        config
    }
}

/// The folders themselves: `plugins()`, `data()`, `log()`, `root`.
impl std::ops::Deref for Dirs {
    type Target = Folders;

    fn deref(&self) -> &Folders {
        &self.0
    }
}

/// A running in-process host.
pub struct TestHost {
    pub addr: SocketAddr,
    /// The admin API's address.
    pub admin_addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub dirs: Dirs,
    pub scan: host::plugins::ScanReport,
    /// The running host's shared state: its registry, store, clock.
    pub state: host::state::AppState,
    client: reqwest::Client,
    host: InProcessHost,
}

impl TestHost {
    /// A host serving the three demo modules.
    pub async fn start() -> TestHost {
        let dirs = Dirs::new();
        for module in DEMO_MODULES {
            dirs.install(module);
        }
        TestHost::start_in(dirs, |_| {}).await
    }

    /// A host on `dirs` (libraries already installed), with `tweak` applied to its config.
    pub async fn start_in(dirs: Dirs, tweak: impl FnOnce(&mut Config)) -> TestHost {
        TestHost::start_with_clock(dirs, Arc::new(ManualClock::new(NOON_MS)), tweak).await
    }

    pub async fn start_with_clock(
        dirs: Dirs,
        clock: Arc<ManualClock>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestHost {
        TestHost::start_logged(dirs, clock, test_logger(), tweak).await
    }

    /// A host on `dirs` that logs to `log`.
    pub async fn start_logged(
        dirs: Dirs,
        clock: Arc<ManualClock>,
        log: slog::Logger,
        tweak: impl FnOnce(&mut Config),
    ) -> TestHost {
        let mut config = dirs.config();
        tweak(&mut config);
        let deps = Deps {
            clock: clock.clone(),
            // The admin API runs `game-host publish`: the real binary, not this test's.
            game_host: binary(),
            ..Deps::new(log)
        };
        let host = InProcessHost::start(config, deps)
            .await
            .unwrap_or_else(|e| panic!("host starts: {e:#}"));
        TestHost {
            addr: host.addr,
            admin_addr: host.admin_addr.expect("the admin listener is on"),
            clock,
            dirs,
            scan: host.scan.clone(),
            state: host.state.clone(),
            client: reqwest::Client::new(),
            host,
        }
    }

    /// Shuts the host down gracefully and hands back its folders (for a restart).
    pub async fn stop(mut self) -> (Dirs, Arc<ManualClock>) {
        // The client's idle kept-alive connections would hold the host's linger
        // (`host::server::CLOSE_LINGER`) to its end: close them first.
        self.client = reqwest::Client::new();
        self.host.stop().await.expect("host task");
        (self.dirs, self.clock)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /metrics` on the admin listener, without the `host` label every series carries
    /// (so that a test names a series as `name{labels}`).
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
            .replace(r#"{host="test-host"}"#, "")
            .replace(r#"host="test-host","#, "")
    }

    /// Calls the admin API; returns status and JSON body.
    /// POSTs `body` (JSON) to the admin API.
    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self
            .client
            .post(format!("http://{}{path}", self.admin_addr))
            .body(body.to_string());
        send(request).await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.admin_addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    /// The newest module event of `kind` (`GET /admin/events`), if there is one.
    pub async fn newest_event(&self, kind: &str) -> Option<Value> {
        let (_, events) = self
            .admin(reqwest::Method::GET, "/admin/events", None)
            .await;
        events["events"]
            .as_array()?
            .iter()
            .rev()
            .find(|e| e["kind"] == kind)
            .cloned()
    }

    /// Waits up to 20 s for a module event of `kind`, and returns the newest one's message.
    pub async fn event_message(&self, kind: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some(event) = self.newest_event(kind).await {
                return event["message"].as_str().unwrap_or_default().to_owned();
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "no `{kind}` event within 20 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// POSTs a raw body with an optional bearer token; returns status and JSON body.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        read(response).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        self.post_raw(path, body.to_string(), token).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Logs `account` in; returns `(player_id, token)`.
    pub async fn login(&self, account: &str) -> (String, String) {
        let (status, body) = self
            .post("/login", &json!({ "account": account }), None)
            .await;
        assert_eq!(status, 200, "login {account}: {body}");
        (
            body["player_id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Runs a command; returns status and JSON body.
    pub async fn logic(&self, token: &str, cmd: &str, data: Value) -> (u16, Value) {
        self.post("/logic", &json!({ "cmd": cmd, "data": data }), Some(token))
            .await
    }

    /// Runs a command that must succeed; returns the reply `data`.
    pub async fn ok(&self, token: &str, cmd: &str, data: Value) -> Value {
        let (status, body) = self.logic(token, cmd, data).await;
        assert_eq!(
            (status, body["ret"].as_i64()),
            (200, Some(0)),
            "{cmd}: {body}"
        );
        body["data"].clone()
    }
}

/// Sends a request built elsewhere; returns status and JSON body.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    read(request.send().await.expect("request")).await
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text}"));
    (status, body)
}

/// Logs to stderr when `TEST_LOG=1`, otherwise nowhere.
pub fn test_logger() -> slog::Logger {
    if std::env::var_os("TEST_LOG").is_some() {
        use slog::Drain;
        let drain =
            slog_term::FullFormat::new(slog_term::PlainSyncDecorator::new(std::io::stderr()))
                .build()
                .fuse();
        slog::Logger::root(std::sync::Mutex::new(drain).fuse(), slog::o!())
    } else {
        host::logging::discard()
    }
}
