//! Pushes on what ops run: two real `game-host` binaries on one server database behind real
//! nginx with the shipped example (`config/deploy/nginx/game-host.conf`), a message crossing
//! from one host to a socket held by the other, and a zero-downtime restart (SIGUSR2) of the
//! socket's host while messages keep coming (PostgreSQL and MariaDB); and in process on SQLite,
//! a hot swap of the pushing module under a stream of messages, and a socket that does not
//! read its pushes (docs/PROTOCOL.md, "Pushes").
//!
//! Two of them found faults, since fixed: a resuming socket's backlog longer than its send
//! queue closed it as a client that does not read (the backlog now takes one slot), and a
//! socket reopened through nginx right after a restart reached the draining host on a
//! kept-alive connection (the example's sockets now have an upstream without them).

use crate::databases::{databases_required, report_skipped, ScratchDb};
use crate::harness::{library, send, Dirs, TestHost, CONFIG_DIR, DEMO_MODULES};
use crate::served::{
    login, runtime, serve_command, signal_pid, start, successor_announced, wait_gone, KillOnDrop,
    Served,
};
use crate::ws::{
    closed, closed_count, next, nothing_within, open_since, open_since_url, open_with_small_window,
    wait_for_closed_count, ws_url_at, Client, PATIENCE,
};
use futures::StreamExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::nginx::{self, Nginx};
use tokio_tungstenite::tungstenite::{Error, Message};

tests_on!(
    [postgres: Postgres, mysql: MySql]
    a_message_from_one_host_reaches_a_socket_behind_nginx_on_the_other_once,
    a_restart_of_the_sockets_host_loses_no_message_and_repeats_none,
);

/// How long a test waits to be sure a push does not come (more than MariaDB's poll, 100 ms).
const QUIET: Duration = Duration::from_millis(600);

// ---------------------------------------------------------------------------------------------
// Two real hosts behind nginx.

/// `game-host serve` with the demo modules on `db`, named `host_id`.
fn host_on(db: &ScratchDb, dirs: &Dirs, host_id: &str) -> Served {
    let mut command = serve_command(dirs);
    command
        .env("GAME_HOST_DATABASE_URL", &db.url)
        .env("GAME_HOST_SERVER_HOST_ID", host_id);
    start(command)
}

/// Two hosts, `a` and `b`, on `db` (and their folders), and nginx in front of them; `None`
/// (the test skipped) when there is no nginx.
fn fleet_on(db: &ScratchDb) -> Option<([Dirs; 2], [Served; 2], Nginx)> {
    let Some(nginx_binary) = nginx::find() else {
        assert!(!databases_required(), "{}", nginx::MISSING);
        report_skipped("nginx", nginx::MISSING);
        return None;
    };
    let dirs = [Dirs::new(), Dirs::new()];
    let hosts = [host_on(db, &dirs[0], "a"), host_on(db, &dirs[1], "b")];
    let front = Nginx::start(
        &nginx_binary,
        Path::new(CONFIG_DIR),
        &[hosts[0].addr, hosts[1].addr],
        2,
    )
    .unwrap_or_else(|e| panic!("nginx: {e:#}"));
    Some((dirs, hosts, front))
}

/// The value of `name` in a host's `/metrics` at `admin` (labels as written, without the `host`
/// label every series carries: `game_host_sockets_open`,
/// `game_host_pushes_delivered_total{kind="message"}`); 0 when the series is absent.
async fn metric_at(admin: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    let host_label = regex::Regex::new(r#"host="[^"]*",?"#).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let line = host_label.replace(line, "").replace("{}", "");
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            Some(value.trim().parse().expect("a number"))
        })
        .unwrap_or(0.0)
}

/// Which of `hosts` holds the one socket open (by `game_host_sockets_open`): its index. Waits
/// until exactly one host counts one socket.
async fn holder_of_the_socket(hosts: &[SocketAddr; 2]) -> usize {
    let start = Instant::now();
    loop {
        let open = [
            metric_at(hosts[0], "game_host_sockets_open").await,
            metric_at(hosts[1], "game_host_sockets_open").await,
        ];
        if open == [1.0, 0.0] {
            return 0;
        }
        if open == [0.0, 1.0] {
            return 1;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no single host holds the socket: sockets open {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `1303`: the player of `token` messages account `to`, over HTTP at `address`; the reply.
async fn message_at(
    client: &reqwest::Client,
    address: SocketAddr,
    token: &str,
    to: &str,
    text: &str,
) -> (u16, Value) {
    let request = client
        .post(format!("http://{address}/logic"))
        .bearer_auth(token)
        .json(&json!({ "cmd": "1303", "data": { "to": to, "text": text } }));
    send(request).await
}

/// The next message, which must be a push: its kind, id and data.
async fn next_push(socket: &mut Client) -> (String, u64, Value) {
    let push = next(socket).await;
    assert!(push.get("cid").is_none(), "a push carries no cid: {push}");
    (
        push["push"]
            .as_str()
            .unwrap_or_else(|| panic!("a push: {push}"))
            .to_owned(),
        push["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("an id: {push}")),
        push["data"].clone(),
    )
}

async fn a_message_from_one_host_reaches_a_socket_behind_nginx_on_the_other_once(db: ScratchDb) {
    let Some((_dirs, hosts, front)) = fleet_on(&db) else {
        return;
    };
    let client = reqwest::Client::new();
    let alice = login(&client, &format!("http://{}/login", front.addr), "alice").await;
    let bob = login(&client, &format!("http://{}/login", front.addr), "bob").await;

    // Alice's socket goes through nginx to one of the hosts; Bob's message goes to the other
    // host directly, so the push must cross from one host to the other.
    let mut socket = open_since_url(&ws_url_at(front.addr), &alice, 0).await;
    let admins = [hosts[0].admin_addr, hosts[1].admin_addr];
    let holder = holder_of_the_socket(&admins).await;
    let other = 1 - holder;
    let sent = Instant::now();
    let (status, reply) = message_at(&client, hosts[other].addr, &bob, "alice", "across").await;
    assert_eq!((status, &reply["ret"]), (200, &json!(0)), "{reply}");
    let (kind, id, data) = next_push(&mut socket).await;
    eprintln!(
        "{:?}: a message sent on host {other} reached the socket on host {holder} (through \
         nginx) in {:?}",
        db.backend,
        sent.elapsed()
    );
    assert_eq!(kind, "message");
    assert!(id > 0);
    assert_eq!(
        data,
        json!({ "from": "bob", "name": "bob", "text": "across" })
    );
    // Once: nothing more comes, from either host.
    nothing_within(&mut socket, QUIET).await;

    // The push was written by the host that ran the command, and delivered by the host that
    // holds the socket (once), not by the other one.
    let written = r#"game_host_pushes_written_total{kind="message"}"#;
    let delivered = r#"game_host_pushes_delivered_total{kind="message"}"#;
    assert_eq!(metric_at(admins[other], written).await, 1.0);
    assert_eq!(metric_at(admins[holder], written).await, 0.0);
    assert_eq!(metric_at(admins[holder], delivered).await, 1.0);
    assert_eq!(metric_at(admins[other], delivered).await, 0.0);
    // nginx logs the socket when it ends.
    socket.close(None).await.expect("closed");
    let start = Instant::now();
    while !front.access_log().contains("\"GET /ws HTTP/1.1\" 101 ") {
        assert!(
            start.elapsed() < PATIENCE,
            "the socket went through nginx: {}",
            front.access_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a [`Reader`] has seen.
#[derive(Default)]
struct Seen {
    /// Every push, in the order read: id and text.
    pushes: Vec<(u64, String)>,
    /// The close code of each socket the host closed.
    closes: Vec<u16>,
    /// Sockets opened, the first included.
    opened: u32,
    /// Pushes read on the current socket.
    on_this_socket: usize,
    /// Attempts to open the socket again that a host refused with 503 (`ret: -6`, "the host
    /// is shutting down: open the socket again"), each tried again after a moment.
    refused: Vec<String>,
    /// Whatever else went wrong: a connection that broke without a close frame, a socket that
    /// did not open, a message that is not a push.
    troubles: Vec<String>,
}

/// A client that reads its player's pushes from a socket at `url` in a task of its own, as a
/// game would: it remembers the last id it handled, and when the host closes the socket it
/// opens a new one with that id as `since`.
struct Reader {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    /// Opens the first socket (`since` 0) and returns once it is open.
    async fn start(url: String, token: String) -> Reader {
        let socket = open_since_url(&url, &token, 0).await;
        let seen = Arc::new(Mutex::new(Seen {
            opened: 1,
            ..Seen::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(Reader::read(socket, url, token, seen.clone(), stop.clone()));
        Reader { seen, stop, task }
    }

    async fn read(
        mut socket: Client,
        url: String,
        token: String,
        seen: Arc<Mutex<Seen>>,
        stop: Arc<AtomicBool>,
    ) {
        let mut last = 0;
        while !stop.load(Ordering::Relaxed) {
            let message = match tokio::time::timeout(Duration::from_millis(50), socket.next()).await
            {
                Err(_) => continue,
                Ok(message) => message,
            };
            let why_reopen = match message {
                Some(Ok(Message::Text(text))) => {
                    let push: Value = serde_json::from_str(&text).expect("JSON text");
                    let mut seen = seen.lock().unwrap();
                    match (push["id"].as_u64(), push["data"]["text"].as_str()) {
                        (Some(id), Some(words)) if push["push"] == "message" => {
                            seen.pushes.push((id, words.to_owned()));
                            seen.on_this_socket += 1;
                            last = last.max(id);
                        }
                        _ => seen.troubles.push(format!("not a message push: {push}")),
                    }
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    seen.lock().unwrap().closes.push(code);
                    None
                }
                Some(Ok(other)) => Some(format!("unexpected {other:?}")),
                Some(Err(e)) => Some(format!("the connection broke: {e}")),
                None => Some("the connection ended without a close frame".to_owned()),
            };
            if let Some(trouble) = why_reopen {
                seen.lock().unwrap().troubles.push(trouble);
            }
            // Open again, resuming after the last push handled; a failed attempt is kept (among
            // the refusals or the troubles) and tried again after a moment.
            socket = loop {
                match Reader::reopen(&url, &token, last).await {
                    Ok(socket) => break socket,
                    Err(Reopen::Refused(e)) => seen.lock().unwrap().refused.push(e),
                    Err(Reopen::Failed(e)) => seen.lock().unwrap().troubles.push(e),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let mut seen = seen.lock().unwrap();
            seen.opened += 1;
            seen.on_this_socket = 0;
        }
    }

    async fn reopen(url: &str, token: &str, since: u64) -> Result<Client, Reopen> {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| match &e {
                    Error::Http(response) if response.status() == 503 => {
                        let body = response.body().as_deref().unwrap_or_default();
                        Reopen::Refused(String::from_utf8_lossy(body).into_owned())
                    }
                    _ => Reopen::Failed(format!("reopening the socket failed: {e}")),
                })?;
        crate::ws::send(&mut socket, json!({ "token": token, "since": since })).await;
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.contains("\"ret\":0") => Ok(socket),
            other => Err(Reopen::Failed(format!(
                "the reopened socket was not welcomed: {other:?}"
            ))),
        }
    }

    /// Reads `f` of what was seen so far.
    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    /// Waits until `done` holds of what was seen; panics after `within`.
    async fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&Seen) -> bool) {
        let start = Instant::now();
        while !self.seen(&done) {
            assert!(
                start.elapsed() < within,
                "the reader waited in vain for {what}: pushes {:?}, closes {:?}, troubles {:?}",
                self.seen(|s| s.pushes.clone()),
                self.seen(|s| s.closes.clone()),
                self.seen(|s| s.troubles.clone()),
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops reading; what was seen.
    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the reader ends");
        Arc::try_unwrap(self.seen)
            .ok()
            .expect("the reader's task has ended")
            .into_inner()
            .unwrap()
    }
}

/// Why a socket did not open again.
enum Reopen {
    /// The host refused it with 503: the body.
    Refused(String),
    Failed(String),
}

/// A player sending one message after another (`1303`, texts `m0`, `m1`, ...), each by
/// `send_one` (to a real binary, or to a host in process), a pause after each reply, until
/// stopped.
struct Sender {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<Sent>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A message's text, and its reply unless it was `ret: 0`.
type Sent = (String, Option<String>);

impl Sender {
    fn start<F, Fut>(pause: Duration, send_one: F) -> Sender
    where
        F: Fn(String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = (u16, Value)> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (stop_, sent_) = (stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !stop_.load(Ordering::Relaxed) {
                let text = format!("m{n}");
                n += 1;
                let (status, reply) = send_one(text.clone()).await;
                let outcome = match status == 200 && reply["ret"] == 0 {
                    true => None,
                    false => Some(format!("{status} {reply}")),
                };
                sent_.lock().unwrap().push((text, outcome));
                tokio::time::sleep(pause).await;
            }
        });
        Sender { stop, sent, task }
    }

    fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// Waits until `more` further messages have been answered.
    async fn sends(&self, more: usize) {
        let target = self.count() + more;
        let start = Instant::now();
        while self.count() < target {
            assert!(start.elapsed() < PATIENCE, "the sender stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops; the texts answered `ret: 0`, in the order sent, and the failures.
    async fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the sender ends");
        let sent = std::mem::take(&mut *self.sent.lock().unwrap());
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for (text, outcome) in sent {
            match outcome {
                None => ok.push(text),
                Some(reply) => failed.push(format!("{text}: {reply}")),
            }
        }
        (ok, failed)
    }
}

/// Every message answered `ret: 0` (`sent`, in order) was read once, in that order, with ids
/// that only grow, and nothing else.
fn assert_each_read_once_in_order(sent: &[String], seen: &Seen) {
    let ids: Vec<u64> = seen.pushes.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "push ids only grow, none twice: {ids:?}"
    );
    let texts: Vec<&str> = seen.pushes.iter().map(|(_, t)| t.as_str()).collect();
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(texts, sent, "every message sent, once, in order");
}

async fn a_restart_of_the_sockets_host_loses_no_message_and_repeats_none(db: ScratchDb) {
    let Some((_dirs, mut hosts, front)) = fleet_on(&db) else {
        return;
    };
    let client = reqwest::Client::new();
    let alice = login(&client, &format!("http://{}/login", front.addr), "alice").await;
    let bob = login(&client, &format!("http://{}/login", front.addr), "bob").await;
    let reader = Reader::start(ws_url_at(front.addr), alice).await;
    let admins = [hosts[0].admin_addr, hosts[1].admin_addr];
    let holder = holder_of_the_socket(&admins).await;
    let other = 1 - holder;

    // Bob messages Alice on the other host, every few tens of milliseconds, throughout.
    let (to, from) = (hosts[other].addr, bob);
    let sender = Sender::start(Duration::from_millis(30), move |text| {
        let (client, from) = (client.clone(), from.clone());
        async move { message_at(&client, to, &from, "alice", &text).await }
    });
    reader
        .wait_until(PATIENCE, "the first messages", |s| s.pushes.len() >= 5)
        .await;

    // The host holding Alice's socket restarts in place.
    let old_pid = hosts[holder].pid();
    hosts[holder].signal("-USR2");
    let (successor, _) = tokio::task::block_in_place(|| successor_announced(&mut hosts[holder]));
    let kill_successor_on_failure = KillOnDrop(successor);
    assert_ne!(successor, old_pid);
    let status = tokio::task::block_in_place(|| hosts[holder].child.wait().unwrap());
    assert_eq!(status.code(), Some(0), "the old host drains and exits");
    reader
        .wait_until(PATIENCE, "a close and messages on a new socket", |s| {
            !s.closes.is_empty() && s.opened >= 2 && s.on_this_socket >= 5
        })
        .await;
    // The new socket is on the successor or on the other host, whichever nginx chose.
    let open = [
        metric_at(admins[0], "game_host_sockets_open").await,
        metric_at(admins[1], "game_host_sockets_open").await,
    ];
    eprintln!(
        "{:?}: after the restart of host {holder}, sockets open per host {open:?}",
        db.backend
    );
    assert_eq!(open.iter().sum::<f64>(), 1.0, "{open:?}");

    let (sent, failed) = sender.finish().await;
    assert!(failed.is_empty(), "Bob's messages failed: {failed:#?}");
    reader
        .wait_until(PATIENCE, "every message sent", |s| {
            s.pushes.len() >= sent.len()
        })
        .await;
    // Nothing more comes once every message is in.
    tokio::time::sleep(QUIET).await;
    let seen = reader.finish().await;
    eprintln!(
        "{:?}: {} messages across the restart; sockets opened {}",
        db.backend,
        sent.len(),
        seen.opened
    );
    assert_eq!(seen.closes, [1001], "closed once, going away");
    assert_eq!(seen.opened, 2, "opened again once");
    assert!(seen.troubles.is_empty(), "{:#?}", seen.troubles);
    // A reopening that nginx passed to the draining host on a connection it kept alive is
    // refused (503, ret -6: "open the socket again"), and opens on the next try; see
    // `a_socket_reopened_through_nginx_right_after_a_restart_is_not_refused`.
    for refused in &seen.refused {
        let body: Value = serde_json::from_str(refused).expect("a JSON body");
        assert_eq!(body["ret"], -6, "{body}");
    }
    eprintln!(
        "{:?}: reopenings refused by the draining host before one opened: {}",
        db.backend,
        seen.refused.len()
    );
    assert_each_read_once_in_order(&sent, &seen);

    std::mem::forget(kill_successor_on_failure);
    signal_pid(successor, "-TERM");
    wait_gone(successor);
}

/// A restart under a socket reopened at once through nginx: one host on SQLite behind nginx
/// (one worker), players' requests going through nginx meanwhile (so that nginx keeps a
/// connection to the host alive, as it does in production), and a restart. The client does
/// what docs/PROTOCOL.md says after 1001 ("connect again ... with since"), at once. The new
/// socket's request must reach the successor, not the draining host on a kept-alive connection
/// (the example's sockets have an upstream of their own, without any).
#[test]
fn a_socket_reopened_through_nginx_right_after_a_restart_is_not_refused() {
    let Some(nginx_binary) = nginx::find() else {
        assert!(!databases_required(), "{}", nginx::MISSING);
        return report_skipped("nginx", nginx::MISSING);
    };
    let dirs = Dirs::new();
    let mut served = start(serve_command(&dirs));
    let front = Nginx::start(&nginx_binary, Path::new(CONFIG_DIR), &[served.addr], 1)
        .unwrap_or_else(|e| panic!("nginx: {e:#}"));
    let url = ws_url_at(front.addr);
    let successor = runtime().block_on(async {
        let client = reqwest::Client::new();
        let alice = login(&client, &format!("http://{}/login", front.addr), "alice").await;
        let bob = login(&client, &format!("http://{}/login", front.addr), "bob").await;
        let mut socket = open_since_url(&url, &alice, 0).await;
        // Bob plays through nginx, a command every 100 ms.
        let stop = Arc::new(AtomicBool::new(false));
        let playing = {
            let (stop, logic) = (stop.clone(), format!("http://{}/logic", front.addr));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = client
                        .post(&logic)
                        .bearer_auth(&bob)
                        .json(&json!({ "cmd": "1203" }));
                    let _ = request.send().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        served.signal("-USR2");
        let (successor, _) = tokio::task::block_in_place(|| successor_announced(&mut served));
        let kill_successor_on_failure = KillOnDrop(successor);
        assert_eq!(closed(&mut socket).await.0, 1001);
        // At once, as a client does.
        let reopened = tokio_tungstenite::connect_async(&url).await;
        stop.store(true, Ordering::Relaxed);
        playing.await.unwrap();
        let status = tokio::task::block_in_place(|| served.child.wait().unwrap());
        assert_eq!(status.code(), Some(0), "the old host drains and exits");
        let info = std::fs::read_to_string(dirs.log().join("game/info.log")).unwrap();
        let refused: Vec<&str> = info
            .lines()
            .filter(|l| l.contains("path=/ws status=503"))
            .collect();
        match reopened {
            Ok((mut socket, _)) => {
                crate::ws::send(&mut socket, json!({ "token": alice, "since": 0 })).await;
                assert_eq!(next(&mut socket).await["ret"], 0);
            }
            Err(e) => panic!(
                "the socket did not open again: {e}\nthe old host's log: {refused:#?}\n\
                 nginx: {}",
                front.access_log()
            ),
        }
        std::mem::forget(kill_successor_on_failure);
        successor
    });
    signal_pid(successor, "-TERM");
    wait_gone(successor);
}

// ---------------------------------------------------------------------------------------------
// In process, on SQLite.

fn demo_dirs() -> Dirs {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    dirs
}

/// A build of the social module with other bytes: the library with `tail` appended. The loader
/// maps only the ELF's segments, so it is the same module; its sha256 differs.
fn other_build_of_social(tail: &[u8]) -> Vec<u8> {
    let mut bytes = std::fs::read(library("social")).unwrap();
    bytes.extend_from_slice(tail);
    bytes
}

/// `GET /admin/modules`: the social module's entry.
async fn social_module(host: &TestHost) -> Value {
    let (status, modules) = host
        .admin(reqwest::Method::GET, "/admin/modules", None)
        .await;
    assert_eq!(status, 200, "{modules}");
    modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "social")
        .cloned()
        .unwrap_or_else(|| panic!("social is served: {modules}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_of_the_pushing_module_loses_no_message_and_repeats_none() {
    let host =
        Arc::new(TestHost::start_in(demo_dirs(), |config| config.plugins.debounce_ms = 50).await);
    let (_, alice) = host.login("alice").await;
    let (_, bob) = host.login("bob").await;
    let before = social_module(&host).await;
    let generation = before["generation"].as_u64().unwrap();

    let reader = Reader::start(crate::ws::ws_url(&host), alice).await;
    // Each message notes the generation serving the social module before it is sent and after
    // its reply: which version ran it, when both agree.
    let generations = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let (host, generations) = (host.clone(), generations.clone());
        // As fast as it is answered (a short pause), so that messages are in flight at the swap.
        Sender::start(Duration::from_millis(2), move |text| {
            let (host, bob, generations) = (host.clone(), bob.clone(), generations.clone());
            async move {
                let serving = || host.state.registry.route("13").unwrap().generation;
                let at_send = serving();
                let reply = host
                    .logic(&bob, "1303", json!({ "to": "alice", "text": text }))
                    .await;
                generations.lock().unwrap().push((at_send, serving()));
                reply
            }
        })
    };
    sender.sends(10).await;

    // A designer ships another build of the module: written beside, then renamed over it.
    let plugins = host.dirs.plugins();
    let temp = plugins.join(".libsocial.so.partial");
    std::fs::write(&temp, other_build_of_social(b"another build")).unwrap();
    std::fs::rename(&temp, plugins.join("libsocial.so")).unwrap();
    let start = Instant::now();
    while host.state.registry.route("13").unwrap().generation == generation {
        assert!(
            start.elapsed() < PATIENCE,
            "the new build was never swapped in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Messages go on on the new version.
    sender.sends(10).await;
    let (sent, failed) = sender.finish().await;
    assert!(failed.is_empty(), "Bob's messages failed: {failed:#?}");
    reader
        .wait_until(PATIENCE, "every message sent", |s| {
            s.pushes.len() >= sent.len()
        })
        .await;
    tokio::time::sleep(QUIET).await;
    let seen = reader.finish().await;

    // The swap happened: a new generation with another sha256, and the registry says so.
    let after = social_module(&host).await;
    assert_eq!(after["generation"], json!(generation + 1), "{after}");
    assert_ne!(after["sha256"], before["sha256"], "{after}");
    assert_eq!(after["version"], before["version"]);
    let swapped = host.state.registry.events().recent().iter().any(|e| {
        e.kind == host::plugins::events::EventKind::Swap
            && e.module == "social"
            && e.generation == generation + 1
    });
    assert!(swapped, "a swap event for the new generation");
    // Messages ran on each version.
    let generations = generations.lock().unwrap().clone();
    let on_old = generations
        .iter()
        .filter(|(at_send, after)| *after == generation && *at_send == generation)
        .count();
    let on_new = generations
        .iter()
        .filter(|(at_send, _)| *at_send == generation + 1)
        .count();
    assert!(on_old >= 10 && on_new >= 9, "old {on_old}, new {on_new}");

    assert!(
        seen.closes.is_empty(),
        "the socket stayed open: {:?}",
        seen.closes
    );
    assert_eq!(seen.opened, 1);
    assert!(seen.troubles.is_empty(), "{:#?}", seen.troubles);
    assert_each_read_once_in_order(&sent, &seen);
    let during = generations.iter().filter(|(a, b)| a != b).count();
    eprintln!(
        "{} messages across the swap ({on_old} on the old version, {on_new} on the new, \
         {during} sent before it and answered after)",
        sent.len()
    );
    Arc::try_unwrap(host)
        .ok()
        .expect("the only owner")
        .stop()
        .await;
}

/// Reads `count` pushes from `socket`: each one's id and text, in the order read; or what came
/// instead (a close, a broken connection, nothing in time), with how many were read before.
async fn read_messages(socket: &mut Client, count: usize) -> Result<Vec<(u64, String)>, String> {
    let mut read = Vec::new();
    while read.len() < count {
        let message = tokio::time::timeout(PATIENCE, socket.next()).await;
        let push: Value = match message {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str(&text).expect("JSON"),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => {
                return Err(format!(
                    "after {} of {count} pushes, instead of the next: {other:?}",
                    read.len()
                ))
            }
        };
        match (push["id"].as_u64(), push["data"]["text"].as_str()) {
            (Some(id), Some(text)) if push["push"] == "message" => read.push((id, text.to_owned())),
            _ => return Err(format!("not a message push: {push}")),
        }
    }
    Ok(read)
}

/// A host whose sockets have a queue of 8 messages (and a backlog that holds every message a
/// test sends); Carol's socket does not read, Dave's does, and four players flood Carol with
/// messages until the host closes her socket. With `resume`, Carol then opens a socket again.
async fn a_socket_that_does_not_read(resume: bool) {
    let host = Arc::new(
        TestHost::start_in(demo_dirs(), |config| {
            config.socket.send_queue = 8;
            config.push.backlog_max = 100_000;
        })
        .await,
    );
    let (_, carol) = host.login("carol").await;
    let (_, dave) = host.login("dave").await;
    let mut senders = Vec::new();
    for n in 0..4 {
        senders.push(host.login(&format!("sender{n}")).await.1);
    }
    let unread = open_with_small_window(&host, &carol, 0).await;
    let mut dave_socket = open_since(&host, &dave, 0).await;

    // The senders flood Carol with long messages (190 four-byte characters: they fill the
    // connection's buffers sooner), each sender's in order, until the host gives up on her socket.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (n, token) in senders.into_iter().enumerate() {
        let (host, stop) = (host.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            let padding = "\u{1F642}".repeat(190);
            while !stop.load(Ordering::Relaxed) && ok.len() + failed.len() < FLOOD_MAX {
                let text = format!("{n}:{}:{padding}", ok.len() + failed.len());
                let (status, reply) = host
                    .logic(&token, "1303", json!({ "to": "carol", "text": text }))
                    .await;
                match status == 200 && reply["ret"] == 0 {
                    true => ok.push(text),
                    false => failed.push(format!("{status} {reply}")),
                }
            }
            (ok, failed)
        }));
    }
    let start = Instant::now();
    while closed_count(&host, 4003).await == 0 && !tasks.iter().all(|t| t.is_finished()) {
        assert!(start.elapsed() < 3 * PATIENCE, "no 4003 in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for task in tasks {
        let (ok, failed) = task.await.expect("a sender ends");
        assert!(failed.is_empty(), "{failed:#?}");
        sent.extend(ok);
    }
    wait_for_closed_count(&host, 4003, 1).await;
    drop(unread);
    let metrics = host.metrics().await;
    let dropped = crate::ops::sample(
        &metrics,
        r#"game_host_pushes_dropped_total{kind="message"}"#,
    )
    .unwrap_or(0.0);
    assert!(dropped > 0.0, "{metrics}");
    eprintln!(
        "{} messages sent until the host closed the socket that did not read ({dropped} \
         dropped)",
        sent.len()
    );

    // The host serves the others on: a command over Dave's socket, and a message to him.
    crate::ws::send(&mut dave_socket, json!({ "cid": 1, "cmd": "1203" })).await;
    let reply = next(&mut dave_socket).await;
    assert_eq!(
        (reply["cid"].clone(), reply["ret"].clone()),
        (json!(1), json!(0))
    );
    host.ok(
        &carol,
        "1303",
        json!({ "to": "dave", "text": "still here" }),
    )
    .await;
    let (kind, _, data) = next_push(&mut dave_socket).await;
    assert_eq!(
        (kind.as_str(), &data["text"]),
        ("message", &json!("still here"))
    );
    assert_eq!(
        closed_count(&host, 4003).await,
        1,
        "only Carol's socket closed"
    );

    if resume {
        // Her messages are kept: a new socket from the start gets every one, in id order, each
        // sender's in the order sent.
        let mut socket = open_since(&host, &carol, 0).await;
        let got = read_messages(&mut socket, sent.len())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        nothing_within(&mut socket, QUIET).await;
        let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
        let got: Vec<String> = got.into_iter().map(|(_, text)| text).collect();
        for n in 0..4 {
            let prefix = format!("{n}:");
            let theirs = |texts: &[String]| -> Vec<String> {
                texts
                    .iter()
                    .filter(|t| t.starts_with(&prefix))
                    .cloned()
                    .collect()
            };
            assert_eq!(
                theirs(&got),
                theirs(&sent),
                "sender {n}'s, in the order sent"
            );
        }
        assert_eq!(got.len(), sent.len());
    }
    Arc::try_unwrap(host)
        .ok()
        .expect("the only owner")
        .stop()
        .await;
}

/// Messages one sender sends at most while flooding a socket that does not read.
const FLOOD_MAX: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_does_not_read_its_pushes_is_closed_and_the_host_serves_the_others() {
    a_socket_that_does_not_read(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closed_for_not_reading_gets_every_kept_message_on_its_next_socket() {
    a_socket_that_does_not_read(true).await;
}

/// With the shipped limits and a client that reads: a player who was away while more messages
/// than `socket.send_queue` (256) arrived resumes with all of them (`push.backlog_max` is 1,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_resuming_after_more_messages_than_its_send_queue_gets_them_all() {
    let host = TestHost::start().await;
    let queue = host.state.config.socket.send_queue;
    assert!(host.state.config.push.backlog_max as usize > queue + 44);
    let (_, alice) = host.login("alice").await;
    let (_, bob) = host.login("bob").await;
    let sent: Vec<String> = (0..queue + 44).map(|n| format!("m{n}")).collect();
    for text in &sent {
        host.ok(&bob, "1303", json!({ "to": "alice", "text": text }))
            .await;
    }
    let mut socket = open_since(&host, &alice, 0).await;
    let got = read_messages(&mut socket, sent.len())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<&String> = got.iter().map(|(_, text)| text).collect();
    assert_eq!(texts, sent.iter().collect::<Vec<_>>());
    nothing_within(&mut socket, QUIET).await;
    assert_eq!(closed_count(&host, 4003).await, 0);
    host.stop().await;
}
