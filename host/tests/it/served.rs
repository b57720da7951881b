//! A real `game-host serve` process ([`testkit::served::Served`]) with the demo modules, and a
//! load of clients to keep it busy meanwhile: what the ops, crash and nginx tests share.

#![allow(dead_code)] // each test module uses a different part

use crate::harness::{self, send, Dirs, DEMO_MODULES};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use testkit::served::{signal as signal_pid, Served};

/// A runtime for a test that drives real processes from synchronous code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `game-host serve` on `dirs` with the demo modules (see [`harness::serve_command`]).
pub fn serve_command(dirs: &Dirs) -> Command {
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let mut command = harness::serve_command(dirs);
    // No stderr log to format: it is discarded, the files are what is tested.
    command.env("GAME_HOST_LOG_STDERR", "off");
    command
}

/// Starts `command` ([`serve_command`]); panics if it does not serve.
pub fn start(command: Command) -> Served {
    Served::start(command).unwrap_or_else(|e| panic!("game-host serve: {e:#}"))
}

/// Kills process `pid` (a successor, not our child) if the test ends before it stopped it.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until process `pid` (not our child) has gone.
pub fn wait_gone(pid: u32) {
    for _ in 0..400 {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie (`Z`) has exited; only its parent (gone or init) may reap it.
        if state.is_empty() || state.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("process {pid} did not exit");
}

/// Reads the old host's stdout up to its `successor <pid> ready`: the successor's pid, and the
/// lines before it (the successor announces itself on the same stdout first).
pub fn successor_announced(served: &mut Served) -> (u32, Vec<String>) {
    let mut lines = Vec::new();
    loop {
        let line = served.stdout.next().expect("stdout ends early").unwrap();
        if let Some(pid) = line
            .strip_prefix("successor ")
            .and_then(|l| l.strip_suffix(" ready"))
        {
            return (pid.parse().unwrap(), lines);
        }
        lines.push(line);
    }
}

pub async fn login(client: &reqwest::Client, url: &str, account: &str) -> String {
    let (status, body) = send(client.post(url).json(&json!({ "account": account }))).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// Clients sending one game command in a loop until told to stop, each as its own player and
/// on its own connection pool: counts what succeeded and keeps what failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<(u64, Vec<String>)>>,
}

/// What a load saw, client by client in the order of the tokens it was given.
pub struct LoadReport {
    /// `ret: 0` replies per client.
    pub ok: Vec<u64>,
    /// Every other outcome: a transport error, a status other than 200, a `ret` other than 0.
    pub errors: Vec<String>,
}

impl LoadReport {
    pub fn total_ok(&self) -> u64 {
        self.ok.iter().sum()
    }
}

impl Load {
    /// `clients` players (`load0`, `load1`, ...) logged in at `address`, each sending `1203`.
    pub async fn start(address: SocketAddr, clients: usize) -> Load {
        let mut tokens = Vec::new();
        for n in 0..clients {
            let url = format!("http://{address}/login");
            tokens.push(login(&reqwest::Client::new(), &url, &format!("load{n}")).await);
        }
        Load::run(address, tokens, json!({ "cmd": "1203" }))
    }

    /// One client per token, each sending `command` (a `/logic` body) to `address`.
    pub fn run(address: SocketAddr, tokens: Vec<String>, command: Value) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let url = format!("http://{address}/logic");
        let tasks = tokens
            .into_iter()
            .map(|token| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let (client, url, command) = (reqwest::Client::new(), url.clone(), command.clone());
                tokio::spawn(async move {
                    let (mut mine, mut errors) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        // A short pause between requests: the connection goes idle now and
                        // then (the case a handover or a stop must not break), and the parallel
                        // tests on a 2-core machine keep some CPU.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let sent = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&command)
                            .send()
                            .await;
                        let reply = match sent {
                            Ok(response) => {
                                let status = response.status();
                                match response.json::<Value>().await {
                                    Ok(body) if status == 200 && body["ret"] == 0 => Ok(()),
                                    Ok(body) => Err(format!("{status}: {body}")),
                                    Err(e) => Err(format!("{status}: {e}")),
                                }
                            }
                            Err(e) => Err(format!("{e:?}")),
                        };
                        match reply {
                            Ok(()) => {
                                mine += 1;
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                errors.push(e);
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    (mine, errors)
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    pub fn served(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` further requests have been served.
    pub async fn serves(&self, more: u64) {
        let target = self.served() + more;
        for _ in 0..2000 {
            if self.served() >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the load stalled at {} requests", self.served());
    }

    /// Stops the clients; what they saw.
    pub async fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut report = LoadReport {
            ok: Vec::new(),
            errors: Vec::new(),
        };
        for task in self.tasks {
            let (ok, errors) = task.await.unwrap();
            report.ok.push(ok);
            report.errors.extend(errors);
        }
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            report.errors.len() as u64
        );
        report
    }
}

/// The player's record (`1203`), asked at `address` (a host, or nginx in front of hosts).
pub async fn state_of(client: &reqwest::Client, address: SocketAddr, token: &str) -> Value {
    let request = client
        .post(format!("http://{address}/logic"))
        .bearer_auth(token)
        .json(&json!({ "cmd": "1203" }));
    let (status, reply) = send(request).await;
    assert_eq!((status, &reply["ret"]), (200, &json!(0)), "{reply}");
    reply["data"].clone()
}

/// Gold granted to each buyer first: more than a load can spend, so that every purchase sells
/// (a refusal for want of gold would hide a purchase applied twice).
pub const BUYER_GOLD: i64 = 10_000_000;
/// What one purchase costs (the shipped mall's potion).
pub const POTION: i64 = 50;

/// Logs in `count` buyers (`buyer0`, …) at `address` and has an operator grant each
/// [`BUYER_GOLD`] through `admin_url(path)`; their tokens, and their records after the grant.
pub async fn buyers(
    client: &reqwest::Client,
    address: SocketAddr,
    admin_url: impl Fn(&str) -> String,
    count: usize,
) -> (Vec<String>, Vec<Value>) {
    let (mut tokens, mut starts) = (Vec::new(), Vec::new());
    for n in 0..count {
        let url = format!("http://{address}/login");
        let token = login(client, &url, &format!("buyer{n}")).await;
        let player_id = state_of(client, address, &token).await["player_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let grant = client
            .post(admin_url(&format!("/admin/players/{player_id}/grant")))
            .json(&json!({ "operator": "test", "reason": "load", "gold": BUYER_GOLD }));
        let (status, granted) = send(grant).await;
        assert_eq!(status, 200, "{granted}");
        starts.push(state_of(client, address, &token).await);
        tokens.push(token);
    }
    (tokens, starts)
}

/// Every acknowledged purchase is in the data exactly once: for each buyer, the gold spent
/// and the potions held since `starts` are what its `bought` `ret: 0` replies say.
pub async fn assert_each_purchase_applied_once(
    client: &reqwest::Client,
    address: SocketAddr,
    tokens: &[String],
    starts: &[Value],
    bought: &[u64],
) {
    for ((token, start), bought) in tokens.iter().zip(starts).zip(bought) {
        let end = state_of(client, address, token).await;
        let bought = *bought as i64;
        let potions = |state: &Value| state["items"]["potion"].as_i64().unwrap_or(0);
        assert_eq!(
            end["gold"].as_i64().unwrap(),
            start["gold"].as_i64().unwrap() - POTION * bought,
            "gold after {bought} purchases: {start} -> {end}"
        );
        assert_eq!(
            potions(&end),
            potions(start) + bought,
            "potions after {bought} purchases: {start} -> {end}"
        );
    }
}
