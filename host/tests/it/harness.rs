//! `TestHost`: a real host on `127.0.0.1:0` with temporary plugin, data and log folders, a
//! clock the test controls, and an HTTP client. Stopping it (or dropping it) shuts it down.

#![allow(dead_code)] // each test module uses a different part of the harness

use host::clock::ManualClock;
use host::{Config, Deps};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 2026-11-25T12:00:00Z: a fixed, mid-day start for the test clock.
pub const NOON_MS: i64 = 1_795_608_000_000;
pub const DAY_MS: i64 = 86_400_000;

/// The demo modules that `make run` serves.
pub const DEMO_MODULES: [&str; 3] = ["activity", "mall", "player"];

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

/// `game-host serve` on `dirs`, both listeners on ports the system picks, stdout piped (its
/// first line is `listening on <addr>`), stderr discarded: a host that outlives a failed test
/// must not hold the test runner's output open. What the host says is in its log files.
pub fn serve_command(dirs: &Dirs) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--config-dir", CONFIG_DIR])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--plugins-dir")
        .arg(dirs.plugins())
        .arg("--data-dir")
        .arg(dirs.data())
        .arg("--log-dir")
        .arg(dirs.log())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    command
}

/// Folders a host runs in; kept across a restart.
pub struct Dirs {
    pub root: TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let dirs = Dirs {
            root: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir_all(dirs.plugins()).unwrap();
        dirs
    }
    pub fn plugins(&self) -> PathBuf {
        self.root.path().join("plugins")
    }
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    pub fn log(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// Copies the library of `crate_name` into the plugins folder as `lib<crate_name>.so`.
    pub fn install(&self, crate_name: &str) -> PathBuf {
        let to = self.plugins().join(format!("lib{crate_name}.so"));
        std::fs::copy(library(crate_name), &to).expect("copy library");
        to
    }

    /// A config pointing at these folders, with test-friendly defaults.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.shutdown_grace_secs = 5;
        config.server.host_id = "test-host".into();
        config.paths.plugins_dir = self.plugins();
        config.paths.data_dir = self.data();
        config.paths.log_dir = self.log();
        config.plugins.workers = 4;
        config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
        config
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
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
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
        let mut config = dirs.config();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let deps = Deps {
            clock: clock.clone(),
            ..Deps::new(test_logger())
        };
        let started = host::Host::start(config, deps).await.expect("host starts");
        let scan = started.scan.clone();
        let state = started.state();
        let admin_addr = started.admin_addr().expect("the admin listener is on");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(started.serve(listener, async {
            let _ = stopped.await;
        }));
        TestHost {
            addr,
            admin_addr,
            clock,
            dirs,
            scan,
            state,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts the host down gracefully and hands back its folders (for a restart).
    pub async fn stop(mut self) -> (Dirs, Arc<ManualClock>) {
        self.shutdown().await;
        let dirs = std::mem::replace(
            &mut self.dirs,
            Dirs {
                root: tempfile::tempdir().unwrap(),
            },
        );
        (dirs, self.clock.clone())
    }

    async fn shutdown(&mut self) {
        // The client's idle kept-alive connections would hold the host's linger
        // (`host::server::CLOSE_LINGER`) to its end: close them first.
        self.client = reqwest::Client::new();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("host task");
        }
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

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
