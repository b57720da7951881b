//! A real `game-host serve` process with the demo modules, the signals tests send it, and a
//! load of clients to keep it busy meanwhile: what the ops and fleet tests share.

#![allow(dead_code)] // each test module uses a different part

use crate::harness::{self, send, Dirs, DEMO_MODULES};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// A running `game-host serve` and its stdout, line by line.
pub struct Served {
    pub child: Child,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub address: String,
    pub admin_address: String,
}

impl Served {
    pub fn start(mut command: Command) -> Served {
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = listening_address(&mut stdout);
        let line = stdout.next().expect("a second line").unwrap();
        let admin_address = line
            .strip_prefix("admin listening on ")
            .unwrap_or_else(|| panic!("second line: {line:?}"))
            .to_owned();
        Served {
            child,
            stdout,
            address,
            admin_address,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_address)
    }

    pub fn signal(&self, name: &str) {
        signal_pid(self.child.id(), name);
    }

    /// Kills the process with SIGKILL, as a crash would: no shutdown path runs, nothing is
    /// flushed or checkpointed. Returns once it is reaped.
    pub fn crash(mut self) {
        self.signal("-KILL");
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_address(stdout: &mut Lines<BufReader<ChildStdout>>) -> String {
    let line = stdout.next().expect("a first line").unwrap();
    line.strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned()
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

pub fn signal_pid(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {name} {pid}");
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
    pub async fn start(address: &str, clients: usize) -> Load {
        let mut tokens = Vec::new();
        for n in 0..clients {
            let url = format!("http://{address}/login");
            tokens.push(login(&reqwest::Client::new(), &url, &format!("load{n}")).await);
        }
        Load::run(address, tokens, json!({ "cmd": "1203" }))
    }

    /// One client per token, each sending `command` (a `/logic` body) to `address`.
    pub fn run(address: &str, tokens: Vec<String>, command: Value) -> Load {
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
pub async fn state_of(client: &reqwest::Client, address: &str, token: &str) -> Value {
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
    address: &str,
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
    address: &str,
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
