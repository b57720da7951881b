//! A PostgreSQL server of the test's own, and what the host does when its database goes away
//! and comes back.
//!
//! [`PrivatePostgres`] is a throwaway PostgreSQL instance: `initdb` into a temporary folder,
//! served on a free port of 127.0.0.1 (never the machine's shared server on 5432, which other
//! tests use), trust authentication, its unix socket inside the folder. The test stops and
//! starts it with `pg_ctl -w` whenever it likes; dropping the value stops it (`-m immediate`)
//! and removes the folder. PostgreSQL refuses to run as root, and tests often run as root:
//! then every PostgreSQL program runs as the `postgres` OS user (through `runuser`), which
//! owns the folder. [`PrivatePostgres::start_tls`] makes one that takes TLS connections only,
//! with a certificate of the test's (`db_tls.rs`). Without the PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin/`) the
//! test is skipped the way `databases.rs` skips a server that does not answer (said on stderr
//! and in `make test`'s report), or fails under `GAME_TEST_REQUIRE_DATABASES=1`.
//!
//! `pg_ctl start` puts the server in a session of its own, so a test process that is killed
//! outright (SIGKILL, not a panic) leaves it running until someone stops it; a panic unwinds
//! through `Drop` and stops it.
//!
//! The test: a host on that server under a steady load of purchases while the server is
//! stopped and started again. Clients must get `ret: -6` (HTTP 503) while it is down, never
//! anything worse, `/health` must say the database is down, the host must come back by itself,
//! and every purchase acknowledged with `ret: 0` must be in the data afterwards. No duration is
//! asserted; the deadlines below only keep a broken host from hanging the test.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::databases::{databases_required, report_skipped};
use crate::db_tls::ServerTls;
use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection, Executor};
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// What the skip report calls these tests.
const SKIP_NAME: &str = "private PostgreSQL (initdb, pg_ctl)";

/// How long `pg_ctl -w` may wait for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";

/// A PostgreSQL instance of the test's own; stopped and removed when dropped.
pub struct PrivatePostgres {
    /// `/usr/lib/postgresql/<version>/bin`.
    bin: PathBuf,
    /// The instance's folder: `data/` (the cluster), `postgres.log`, the unix socket.
    dir: TempDir,
    /// The TCP port on 127.0.0.1.
    port: u16,
    /// Whether the PostgreSQL programs run as the `postgres` OS user (the test runs as root).
    as_postgres: bool,
}

impl PrivatePostgres {
    /// A new, running instance; `None` if the test must be skipped (said on stderr). Panics if
    /// PostgreSQL is there but will not set up or start.
    pub async fn start() -> Option<PrivatePostgres> {
        PrivatePostgres::start_with(None).await
    }

    /// A new, running instance that takes TLS connections only, with `tls`'s certificate
    /// (`ssl = on`; pg_hba.conf: `hostssl` lines only), so that whoever it serves over TCP
    /// speaks TLS.
    pub async fn start_tls(tls: &ServerTls) -> Option<PrivatePostgres> {
        PrivatePostgres::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<&ServerTls>) -> Option<PrivatePostgres> {
        let bin = match find_bin() {
            Ok(bin) => bin,
            Err(why) => return skip(&why),
        };
        let as_postgres = effective_uid() == Some(0);
        let dir = tempfile::tempdir().expect("temp dir");
        // The owner to give the instance's files, when it is not this process.
        let mut uid_gid = None;
        if as_postgres {
            // initdb and postgres refuse root: the folder is the `postgres` user's.
            if which("runuser").is_none() {
                return skip("the tests run as root and there is no `runuser` to run PostgreSQL as the postgres user");
            }
            let (Some(uid), Some(gid)) = (id_of("-u"), id_of("-g")) else {
                return skip(
                    "the tests run as root and there is no `postgres` OS user to run PostgreSQL as",
                );
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the instance folder to postgres");
            uid_gid = Some((uid, gid));
        }
        let mut postgres = PrivatePostgres {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        postgres.init();
        if let Some(tls) = tls {
            postgres.serve_tls_only(tls, uid_gid);
        }
        // The port is free when picked but not reserved; if something took it meanwhile,
        // PostgreSQL cannot bind it: pick another.
        for attempt in 1..=5 {
            postgres.port = free_port();
            match postgres.pg_ctl_start().await {
                Ok(()) => return Some(postgres),
                Err(why) if attempt < 5 && why.contains("Address already in use") => {
                    eprintln!("port {} was taken, trying another", postgres.port);
                }
                Err(why) => panic!("the private PostgreSQL does not start: {why}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// A URL for the `postgres` superuser on database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name`; returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        create_database_on(&self.url("postgres"), name, || self.log_tail()).await;
        self.url(name)
    }

    /// Stops the server the polite way clients notice: `pg_ctl stop -m fast` ends every
    /// session (rolling back open transactions) and returns once the server is gone.
    pub async fn stop_fast(&self) {
        let output = self.run_async(self.pg_ctl(&["stop", "-m", "fast"])).await;
        assert!(
            output.status.success(),
            "pg_ctl stop: {}\n{}",
            text(&output),
            self.log_tail()
        );
    }

    /// Starts the stopped server again, on the same port and data; returns once it accepts
    /// connections.
    pub async fn start_again(&self) {
        if let Err(why) = self.pg_ctl_start().await {
            panic!("the private PostgreSQL does not start again: {why}");
        }
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- the end of {} ---\n{tail}", self.log_path().display())
    }

    fn data_path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `initdb` with trust authentication, then the settings every start uses: TCP on
    /// 127.0.0.1 only, the unix socket in the instance folder (not /var/run/postgresql, which
    /// belongs to the shared server).
    fn init(&self) {
        let mut initdb = self.program("initdb");
        initdb
            .arg("-D")
            .arg(self.data_path())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        let output = initdb.output().expect("run initdb");
        assert!(output.status.success(), "initdb: {}", text(&output));
        let settings = format!(
            "\n# private_postgres.rs\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n",
            self.dir.path().display()
        );
        append(&self.data_path().join("postgresql.conf"), &settings);
    }

    /// TLS with `tls`'s certificate, and TCP connections over TLS only. PostgreSQL wants its
    /// key file owned by the user it runs as and private to it (0600).
    fn serve_tls_only(&self, tls: &ServerTls, owner: Option<(u32, u32)>) {
        let (cert, key) = tls.install(self.dir.path(), owner);
        let settings = format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            cert.display(),
            key.display()
        );
        append(&self.data_path().join("postgresql.conf"), &settings);
        std::fs::write(
            self.data_path().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
    }

    /// `pg_ctl start -w` on this instance's port; the error carries pg_ctl's output and the
    /// end of the server's log.
    async fn pg_ctl_start(&self) -> Result<(), String> {
        let mut start = self.pg_ctl(&["start"]);
        start
            .arg("-l")
            .arg(self.log_path())
            .arg("-o")
            .arg(format!("-p {}", self.port));
        let output = self.run_async(start).await;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{}\n{}", text(&output), self.log_tail()))
        }
    }

    /// `pg_ctl -w -D <data> <args>`.
    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = self.program("pg_ctl");
        command
            .args(["-w", "-t", PG_CTL_WAIT_SECS, "-D"])
            .arg(self.data_path())
            .args(args);
        command
    }

    /// A PostgreSQL program, as the `postgres` user if the test runs as root, in the instance
    /// folder (the programs may not read root's home), without the test's stdin.
    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    /// Runs `command` to its end without blocking the runtime's thread (the host under test
    /// serves on the same runtime).
    async fn run_async(&self, command: Command) -> Output {
        tokio::process::Command::from(command)
            .output()
            .await
            .expect("run pg_ctl")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Nothing may outlive the test. Already stopped, pg_ctl says so and changes nothing.
        let _ = self
            .pg_ctl(&["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with initdb, pg_ctl and postgres, or why
/// there is none.
fn find_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let entries = std::fs::read_dir(root).map_err(|e| format!("no {}: {e}", root.display()))?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(|| {
            format!(
                "no {}/<version>/bin with initdb, pg_ctl and postgres",
                root.display()
            )
        })
}

/// Skips the test (said on stderr and in the report), or fails it if databases are required.
fn skip(why: &str) -> Option<PrivatePostgres> {
    if databases_required() {
        panic!("the {SKIP_NAME} is required (GAME_TEST_REQUIRE_DATABASES=1): {why}");
    }
    report_skipped(SKIP_NAME, why);
    None
}

/// This process's effective user id, from `/proc/self/status` (no `unsafe` `geteuid`).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    // Uid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `id <flag> postgres`: the postgres user's uid (`-u`) or gid (`-g`).
fn id_of(flag: &str) -> Option<u32> {
    os_id(flag, "postgres")
}

/// `id <flag> <user>`: that OS user's uid (`-u`) or gid (`-g`).
pub fn os_id(flag: &str, user: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, user]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Adds `text` at the end of the file at `path`.
fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::io::Write::write_all(&mut file, text.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A TCP port of 127.0.0.1 that was free a moment ago: bound on port 0, then released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// The test

/// The good the load buys, and its price (plugins/mall/src/rules.rs).
const GOOD: &str = "potion";
const PRICE: i64 = 50;

/// Gold granted before the load, so that no purchase is refused for want of gold.
const GRANT: i64 = 100_000_000;

/// Concurrent tasks buying for the one player (the host runs them one at a time).
const BUYERS: usize = 4;

/// Purchases to see acknowledged before the stop, and again after the recovery.
const PURCHASES_PER_PHASE: u64 = 50;

/// Requests while the database is down that must answer -6 before it is started again.
const DOWN_REPLIES: u64 = 4;

/// Longest any request may take before the test calls it hung: well beyond the host's
/// connect (1 s) and statement (2 s) timeouts, plus the wait for the player's turn behind the
/// other buyers.
const REQUEST_GUARD: Duration = Duration::from_secs(30);

/// How long the test waits for something that should happen (the host recovering, the load
/// reaching a count) before it fails; a guard only, never a measure.
const DEADLINE: Duration = Duration::from_secs(60);

/// Where the database is, as the buyers see it: a request that starts and ends in the same
/// phase saw only that phase.
const UP: u8 = 0;
const DOWN: u8 = 1;
const RESTARTING: u8 = 2;

/// What the buyers saw.
#[derive(Default)]
struct Tally {
    /// Purchases answered `ret: 0`.
    acknowledged: AtomicU64,
    /// Purchases answered `ret: -6`, HTTP 503, with a message about the database.
    unavailable: AtomicU64,
    /// Of those, the ones that started and ended while the database was down.
    unavailable_while_down: AtomicU64,
    /// Every other reply (a wrong code, status or message, a hang): each fails the test.
    unexpected: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_rides_out_a_postgres_restart_and_loses_no_acknowledged_purchase() {
    let Some(postgres) = PrivatePostgres::start().await else {
        return;
    };
    let url = postgres.create_database("game").await;
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let host = Arc::new(
        TestHost::start_in(dirs, |config| {
            config.store.url = url.clone();
            config.store.pool_size = 8;
            config.store.connect_timeout_ms = 1_000;
            config.store.statement_timeout_ms = 2_000;
        })
        .await,
    );

    // A player rich enough that the load never runs out of gold.
    let (player_id, token) = host.login("rider").await;
    let (status, granted) = crate::harness::send(
        reqwest::Client::new()
            .post(format!(
                "http://{}/admin/players/{player_id}/grant",
                host.admin_addr
            ))
            .body(json!({ "operator": "test", "reason": "load", "gold": GRANT }).to_string()),
    )
    .await;
    assert_eq!(status, 200, "grant: {granted}");
    let before = host.ok(&token, "1203", json!({})).await;
    let start_gold = before["gold"].as_i64().expect("gold");
    assert_eq!(start_gold, 1_000 + GRANT, "{before}");
    assert_eq!(before["items"].get(GOOD), None, "{before}");

    // The load: BUYERS tasks buying one potion at a time until told to stop.
    let tally = Arc::new(Tally::default());
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|_| {
            let (host, token) = (host.clone(), token.clone());
            let (tally, phase, stop) = (tally.clone(), phase.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    buy_once(&host, &token, &tally, &phase).await;
                }
            })
        })
        .collect();

    // 1. The database serves: purchases go through.
    wait_for("purchases before the stop", || async {
        tally.acknowledged.load(Ordering::SeqCst) >= PURCHASES_PER_PHASE
    })
    .await;

    // 2. The database goes away under the load.
    postgres.stop_fast().await;
    phase.store(DOWN, Ordering::SeqCst);
    eprintln!(
        "PostgreSQL stopped after {} acknowledged purchases",
        tally.acknowledged.load(Ordering::SeqCst)
    );

    // A purchase now answers -6 with HTTP 503 and says why, without the server's details.
    let (status, body) = guarded(
        "a purchase while the database is down",
        host.logic(&token, "1103", json!({ "id": GOOD, "count": 1 })),
    )
    .await;
    assert_eq!((status, body["ret"].as_i64()), (503, Some(-6)), "{body}");
    assert_eq!(body["cmd"], "1104", "{body}");
    let msg = body["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("database"),
        "the msg names the database: {body}"
    );
    for secret in [
        postgres.port.to_string().as_str(),
        "127.0.0.1",
        "postgres://",
    ] {
        assert!(!msg.contains(secret), "the msg leaks `{secret}`: {body}");
    }

    // /health tells the load balancer, naming the database.
    let (status, health) = guarded("GET /health while down", host.get("/health")).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["ret"], -6, "{health}");
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["down"], json!(["database"]), "{health}");
    assert!(
        health["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{health}"
    );

    // The buyers see it too (each -6 waits out the connect timeout).
    wait_for(
        "-6 replies to the load while the database is down",
        || async { tally.unavailable_while_down.load(Ordering::SeqCst) >= DOWN_REPLIES },
    )
    .await;

    // 3. The database comes back; the host is not touched.
    phase.store(RESTARTING, Ordering::SeqCst);
    postgres.start_again().await;
    phase.store(UP, Ordering::SeqCst);
    eprintln!("PostgreSQL started again");

    // The host reconnects by itself: a read goes through again, and /health says 200.
    wait_for("a command to succeed after the restart", || async {
        let (status, body) = guarded(
            "1203 after the restart",
            host.logic(&token, "1203", json!({})),
        )
        .await;
        match (status, body["ret"].as_i64()) {
            (200, Some(0)) => true,
            (503, Some(-6)) => false,
            _ => panic!("1203 after the restart answered {status}: {body}"),
        }
    })
    .await;
    wait_for("/health to say 200 after the restart", || async {
        let (status, body) = guarded("GET /health after the restart", host.get("/health")).await;
        match status {
            200 => true,
            503 => false,
            _ => panic!("/health after the restart answered {status}: {body}"),
        }
    })
    .await;
    let acknowledged_at_recovery = tally.acknowledged.load(Ordering::SeqCst);
    wait_for("purchases after the recovery", || async {
        tally.acknowledged.load(Ordering::SeqCst) >= acknowledged_at_recovery + PURCHASES_PER_PHASE
    })
    .await;

    // 4. The load ends; every reply was 0 or -6.
    stop.store(true, Ordering::SeqCst);
    for buyer in buyers {
        buyer.await.expect("a buyer task panicked");
    }
    let acknowledged = tally.acknowledged.load(Ordering::SeqCst);
    let unavailable = tally.unavailable.load(Ordering::SeqCst);
    eprintln!(
        "the load: {acknowledged} purchases acknowledged, {unavailable} answered -6 ({} while the database was down)",
        tally.unavailable_while_down.load(Ordering::SeqCst)
    );
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "replies other than ret 0 or -6/503:\n{}",
        unexpected.join("\n")
    );

    // 5. Every acknowledged purchase is in the data, and nothing else: the record the player
    // module reads, and the one an operator reads.
    let record = host.ok(&token, "1203", json!({})).await;
    let (status, shown) = host
        .admin(
            reqwest::Method::GET,
            &format!("/admin/players/{player_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["player"]["player"], record, "both reads agree");
    let potions = record["items"][GOOD].as_i64().unwrap_or(0);
    let gold = record["gold"].as_i64().expect("gold");
    assert_eq!(
        gold,
        start_gold - PRICE * potions,
        "gold and potions changed together: {record}"
    );
    assert!(
        potions >= acknowledged as i64,
        "purchases acknowledged with ret 0 were lost: {acknowledged} acknowledged, \
         {potions} potions in the data: {record}"
    );
    // More potions than acknowledgements would mean a purchase answered -6 was applied (a
    // commit the database made but whose answer the host never got): the client was told to
    // retry something that had happened.
    assert_eq!(
        potions, acknowledged as i64,
        "a purchase answered -6 is in the data ({unavailable} answered -6): {record}"
    );

    // The host first (it closes its pool), then the server.
    if let Some(host) = Arc::into_inner(host) {
        host.stop().await;
    }
    drop(postgres);
}

/// One purchase by a buyer, tallied.
async fn buy_once(host: &TestHost, token: &str, tally: &Tally, phase: &AtomicU8) {
    let started_in = phase.load(Ordering::SeqCst);
    let reply = tokio::time::timeout(
        REQUEST_GUARD,
        host.logic(token, "1103", json!({ "id": GOOD, "count": 1 })),
    )
    .await;
    let ended_in = phase.load(Ordering::SeqCst);
    let while_down = started_in == DOWN && ended_in == DOWN;
    let unexpected = |what: String| tally.unexpected.lock().unwrap().push(what);
    let Ok((status, body)) = reply else {
        unexpected(format!("1103 did not answer within {REQUEST_GUARD:?}"));
        return;
    };
    let msg = body["msg"].as_str().unwrap_or_default();
    match (status, body["ret"].as_i64()) {
        (200, Some(0)) if while_down => unexpected(format!(
            "1103 succeeded while the database was down: {body}"
        )),
        (200, Some(0)) if body["cmd"] == "1104" => {
            tally.acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        (503, Some(-6)) if msg.contains("database") => {
            tally.unavailable.fetch_add(1, Ordering::SeqCst);
            if while_down {
                tally.unavailable_while_down.fetch_add(1, Ordering::SeqCst);
            }
        }
        _ => unexpected(format!("1103 answered {status}: {body}")),
    }
}

/// `request`, or a failure naming `what` if it takes longer than [`REQUEST_GUARD`].
async fn guarded(what: &str, request: impl Future<Output = (u16, Value)>) -> (u16, Value) {
    tokio::time::timeout(REQUEST_GUARD, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {REQUEST_GUARD:?}"))
}

/// Polls `done` until it says yes; fails naming `what` after [`DEADLINE`].
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {DEADLINE:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates database `name` on the server of the URL `admin`; `log_tail` says what the server
/// logged, for a connection that fails.
pub async fn create_database_on(admin: &str, name: &str, log_tail: impl Fn() -> String) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin}: {e}\n{}", log_tail()));
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
}
