//! One host per SQLite file, on the real binary: a second `game-host serve` on a file that a
//! host serves is refused at start with what to do, and the first serves on; a restart
//! (`SIGUSR2`) hands the lock to the successor, and a successor that fails leaves it with its
//! predecessor; a host that stops frees the file. `game-host check` reads the file meanwhile.

use crate::harness::{self, binary, send, Dirs, CONFIG_DIR};
use crate::served::{
    login, runtime, serve_command, signal_pid, start, state_of, successor_announced, wait_gone,
    KillOnDrop, Served,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The database the host on `dirs` serves by default.
fn database(dirs: &Dirs) -> PathBuf {
    dirs.data().join("game.db")
}

/// `game-host serve` on folders of its own, on the database file `database`.
fn serve_on(own: &Dirs, database: &Path) -> Command {
    let mut command = harness::serve_command(own);
    command
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()));
    command
}

/// Runs a `serve` that must be refused at start: its output, once it has exited. One that
/// serves instead is killed after 30 s, and the test fails.
fn refused(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start game-host serve");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output().expect("wait for game-host serve");
    let _ = watchdog.join();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("listening on"),
        "the second host must not serve: {stdout}"
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "refused with an error, not a panic or a kill: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The refusal's message (its stderr), checked to name the holder `pid` (any of `pids`) and
/// the file, and to say what to do.
fn refusal_names(output: &Output, pids: &[u32], database: &Path) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        pids.iter()
            .any(|pid| stderr.contains(&format!("another game-host (pid {pid}) serves sqlite://"))),
        "names the holder, one of {pids:?}: {stderr}"
    );
    let real = database.canonicalize().unwrap();
    assert!(
        stderr.contains(&format!("{}.lock", real.display())),
        "names the lock file: {stderr}"
    );
    for what_to_do in [
        "two hosts on one SQLite file lose updates",
        "stop it",
        "--database-url",
        "PostgreSQL or MariaDB",
    ] {
        assert!(stderr.contains(what_to_do), "`{what_to_do}`: {stderr}");
    }
    stderr
}

/// The pid written in the lock file of `database`.
fn lock_holder(database: &Path) -> Option<u32> {
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    std::fs::read_to_string(lock).ok()?.trim().parse().ok()
}

/// The successor's pid once `served` says it is ready ([`successor_announced`]). If none is
/// announced within 90 s (a successor refused the lock, and `served` serves on), `served` is
/// killed, which ends its stdout and fails the test instead of hanging it.
fn successor_within_90s(served: &mut Served) -> u32 {
    let (announced, waiting) = std::sync::mpsc::channel::<()>();
    let pid = served.pid().to_string();
    let watchdog = std::thread::spawn(move || {
        if waiting.recv_timeout(Duration::from_secs(90)).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let (successor, _) = successor_announced(served);
    let _ = announced.send(());
    let _ = watchdog.join();
    successor
}

/// Buys one potion as `token` on `served`; the player's potions after it.
async fn buy_potion(client: &reqwest::Client, served: &Served, token: &str) -> i64 {
    let request = client
        .post(served.url("/logic"))
        .bearer_auth(token)
        .json(&json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } }));
    let (status, reply) = send(request).await;
    assert_eq!((status, &reply["ret"]), (200, &json!(0)), "{reply}");
    let record = state_of(client, served.addr, token).await;
    record["items"]["potion"].as_i64().unwrap()
}

#[test]
fn a_second_host_on_the_file_is_refused_at_start_and_the_first_serves_on() {
    let dirs = Dirs::new();
    let served = start(serve_command(&dirs));
    let db = database(&dirs);
    assert_eq!(lock_holder(&db), Some(served.pid()));

    // The same command again, and an unrelated host that spells the path another way.
    refusal_names(
        &refused(harness::serve_command(&dirs)),
        &[served.pid()],
        &db,
    );
    let other = Dirs::new();
    let spelled = dirs.data().join("..").join("data").join("game.db");
    refusal_names(&refused(serve_on(&other, &spelled)), &[served.pid()], &db);

    // `check` reads the served file (see `check.rs`: it takes no lock).
    let check = Command::new(binary())
        .args(["check", "--config-dir", CONFIG_DIR, "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        // The served copy: its tables are beside it.
        .arg(dirs.plugins().join("libmall.so"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    runtime().block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &served.url("/login"), "buyer").await;
        assert_eq!(buy_potion(&client, &served, &token).await, 1);
    });
    assert_eq!(lock_holder(&db), Some(served.pid()));
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));
}

#[test]
fn after_a_restart_the_successor_holds_the_lock_and_serves() {
    let dirs = Dirs::new();
    let db = database(&dirs);
    let mut served = start(serve_command(&dirs));
    let predecessor = served.pid();
    let successor = runtime().block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &served.url("/login"), "buyer").await;
        assert_eq!(buy_potion(&client, &served, &token).await, 1);
        served.signal("-USR2");
        let successor = successor_within_90s(&mut served);
        let kill_successor_on_failure = KillOnDrop(successor);
        // The predecessor drains; both hold the one lock.
        refusal_names(
            &refused(harness::serve_command(&dirs)),
            &[predecessor, successor],
            &db,
        );
        let status = tokio::task::block_in_place(|| served.child.wait().unwrap());
        assert_eq!(status.code(), Some(0), "the old host drains and exits");
        // The successor alone holds it now.
        assert_eq!(lock_holder(&db), Some(successor));
        refusal_names(&refused(harness::serve_command(&dirs)), &[successor], &db);
        assert_eq!(buy_potion(&client, &served, &token).await, 2);
        std::mem::forget(kill_successor_on_failure);
        successor
    });
    signal_pid(successor, "-TERM");
    wait_gone(successor);

    // Its successor gone too, the file is free.
    let next = start(harness::serve_command(&dirs));
    assert_eq!(lock_holder(&db), Some(next.pid()));
    next.signal("-TERM");
    assert_eq!(next.wait(), Some(0));
}

#[test]
fn a_successor_that_fails_leaves_the_lock_with_its_predecessor() {
    let dirs = Dirs::new();
    let db = database(&dirs);
    dirs.install("fixture_faulty");
    let site = dirs.root.path().join("site.toml");
    std::fs::write(&site, "[server]\nhandover_timeout_secs = 3\n").unwrap();
    let mut command = serve_command(&dirs);
    command.arg("--config").arg(&site);
    let served = start(command);
    let predecessor = served.pid();
    // The successor reads this: module `faulty`'s init hangs in it (the gate never opens),
    // after it has taken the lock over, until the predecessor gives up on it.
    let gate = dirs.root.path().join("never");
    std::fs::write(
        &site,
        format!(
            "[server]\nhandover_timeout_secs = 3\n[modules.faulty]\ninit = \"hang\"\ngate = \"{}\"\n",
            gate.display()
        ),
    )
    .unwrap();
    let watched = db.clone();
    let holders = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Some(pid) = lock_holder(&watched) {
                if seen.last() != Some(&pid) {
                    seen.push(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let (status, reply) = send(client.post(served.admin_url("/admin/restart"))).await;
        assert_eq!((status, &reply["ret"]), (200, &json!(1)), "{reply}");
        let msg = reply["msg"].as_str().unwrap();
        // Not "exited before it was ready": it got past the lock, and was stopped.
        assert!(msg.contains("was not ready within"), "{reply}");
        let (status, health) = send(client.get(served.url("/health"))).await;
        assert_eq!(
            (status, health["ret"].as_i64()),
            (200, Some(0)),
            "serves on"
        );
    });
    let seen = holders.join().unwrap();
    assert_eq!(seen.first(), Some(&predecessor), "{seen:?}");
    assert!(
        seen.iter().any(|pid| *pid != predecessor),
        "the successor wrote its pid in the lock it took over: {seen:?}"
    );
    assert_eq!(
        lock_holder(&db),
        Some(predecessor),
        "and the predecessor its own again"
    );
    refusal_names(&refused(harness::serve_command(&dirs)), &[predecessor], &db);
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));
}

#[test]
fn once_the_host_has_stopped_a_new_host_serves_the_file() {
    let dirs = Dirs::new();
    let db = database(&dirs);
    let rt = runtime();
    let served = start(serve_command(&dirs));
    let (player, token, potions) = rt.block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &served.url("/login"), "buyer").await;
        let potions = buy_potion(&client, &served, &token).await;
        let player = state_of(&client, served.addr, &token).await["player_id"].clone();
        (player, token, potions)
    });
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));

    let next = start(harness::serve_command(&dirs));
    assert_eq!(lock_holder(&db), Some(next.pid()));
    rt.block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(
            state_of(&client, next.addr, &token).await["player_id"],
            player,
            "the same file, sessions and all"
        );
        assert_eq!(buy_potion(&client, &next, &token).await, potions + 1);
    });
    next.signal("-TERM");
    assert_eq!(next.wait(), Some(0));
}
