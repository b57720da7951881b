//! The real `game-host` binary: `serve` (its first stdout line, serving, a clean exit on
//! SIGTERM) and `check`.

use crate::harness::{binary, library, send, serve_command, Dirs, CONFIG_DIR};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output};
use testkit::served::signal;

/// `game-host check FILE`, with the mall's tables from its crate (they are not beside the
/// build).
fn check(file: &std::path::Path) -> Output {
    Command::new(binary())
        .args(["check", "--config-dir", CONFIG_DIR, "--tables"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/mall/tables"
        ))
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn check_prints_what_a_good_library_is() {
    let output = check(&library("mall"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for line in [
        "name: mall",
        "prefix: 11",
        "version: 0.1.0",
        "commands: 1101, 1103",
        "refusals: 1 not_enough_gold, 2 no_such_good, 3 bad_count",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "`{line}` missing: {stdout}"
        );
    }
}

#[test]
fn check_says_so_when_a_library_declares_no_refusals() {
    let output = check(&library("fixture_swap_a"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.lines().any(|l| l == "refusals: none"), "{stdout}");
}

#[test]
fn check_says_why_a_bad_library_would_be_refused() {
    // In a private folder: one straight in the shared /tmp would be refused for that alone.
    let folder = tempfile::tempdir().unwrap();
    let garbage = folder.path().join("libgarbage.so");
    std::fs::write(&garbage, b"garbage").unwrap();
    for (file, words) in [
        (library("fixture_incompatible"), "plugin-api 0.99.0"),
        (library("fixture_badprefix"), "two digits"),
        (
            library("fixture_badnumber"),
            "whose reply `9800` would leave its prefix 97",
        ),
        (garbage, "not a loadable library"),
    ] {
        let output = check(&file);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.starts_with("refused: ") && stdout.contains(words),
            "{stdout}"
        );
    }
}

/// Starts `game-host serve` on `dirs` (plus `extra` arguments); returns the child and the
/// address from its first stdout line, which must be exactly `listening on <ip>:<port>`.
fn serve(dirs: &Dirs, extra: &[&str]) -> (Child, String) {
    let mut child = serve_command(dirs).args(extra).spawn().unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let address = first_line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|port| port.trim_end().parse::<u16>().ok())
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("first line: {first_line:?}"));
    assert!(first_line.ends_with('\n') && !address.ends_with(":0"));
    (child, address)
}

#[test]
fn serve_announces_its_address_serves_and_exits_cleanly_on_sigterm() {
    let dirs = Dirs::new();
    dirs.install("player");
    let (mut child, address) = serve(&dirs, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{address}{path}");
        let (_, health) = send(client.get(url("/health"))).await;
        assert_eq!(health, serde_json::json!({ "ret": 0, "status": "ok" }));
        let (_, login) = send(client.post(url("/login")).body(r#"{"account":"cli"}"#)).await;
        let token = login["token"].as_str().unwrap();
        let (_, record) = send(
            client
                .post(url("/logic"))
                .bearer_auth(token)
                .body(r#"{"cmd":"1203"}"#),
        )
        .await;
        assert_eq!(record["data"]["gold"], 1000);
    });

    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean shutdown exits 0");
    assert!(
        dirs.log().join("host/debug.log").is_file(),
        "the debug log is written"
    );
}

#[test]
fn a_bad_config_stops_the_host_at_start_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[server]\nlisten_on = \"x\"\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["serve", "--config-dir"])
        .arg(dir.path())
        .args(["--profile", "broken"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("broken.toml") && stderr.contains("listen_on"),
        "{stderr}"
    );
}

#[test]
fn sighup_rescans_the_plugins_directory() {
    let dirs = Dirs::new();
    dirs.install("player");
    let config = dirs.root.path().join("no-watch.toml");
    std::fs::write(&config, "[plugins]\nwatch = false\n").unwrap();
    let (mut child, address) = serve(&dirs, &["--config", config.to_str().unwrap()]);
    dirs.install("mall");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let served = runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{address}{path}");
        let (_, login) = send(client.post(url("/login")).body(r#"{"account":"hup"}"#)).await;
        let token = login["token"].as_str().unwrap().to_owned();
        let ret = |client: reqwest::Client| {
            let (url, token) = (url("/logic"), token.clone());
            async move {
                send(
                    client
                        .post(url)
                        .bearer_auth(token)
                        .body(r#"{"cmd":"1101"}"#),
                )
                .await
                .1["ret"]
                    .clone()
            }
        };
        assert_eq!(
            ret(client.clone()).await,
            -1,
            "the watcher is off: mall is not served yet"
        );
        signal(child.id(), "-HUP");
        for _ in 0..500 {
            if ret(client.clone()).await == 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    });
    signal(child.id(), "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(served, "SIGHUP loaded the new library");
}

#[test]
fn a_database_password_is_never_printed() {
    let secret_url = "postgres://game:s3cret@127.0.0.1:1/game";
    let config = Command::new(binary())
        .args([
            "config",
            "--config-dir",
            CONFIG_DIR,
            "--database-url",
            secret_url,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&config.stdout);
    assert!(config.status.success(), "{stdout}");
    assert!(
        stdout.contains(r#"url = "postgres://game:***@127.0.0.1:1/game""#),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");

    // Nothing answers on port 1: the host stops at start, naming the database but not the
    // password, in its message and in its log files.
    let dirs = Dirs::new();
    let serve = serve_command(&dirs)
        .env("GAME_HOST_DATABASE_URL", secret_url)
        .env("GAME_HOST_STORE_CONNECT_TIMEOUT_MS", "300")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to postgres://game:***@127.0.0.1:1/game"),
        "{stderr}"
    );
    let mut logged = String::new();
    for file in ["host/debug.log", "game/info.log", "game/error.log"] {
        logged += &std::fs::read_to_string(dirs.log().join(file)).unwrap_or_default();
    }
    assert!(
        !stderr.contains("s3cret") && !logged.contains("s3cret"),
        "{stderr}{logged}"
    );
}

#[test]
fn plugins_source_is_a_flag_of_serve_and_its_effective_config() {
    let effective = |args: &[&str]| {
        let output = Command::new(binary())
            .args(["config", "--config-dir", crate::harness::CONFIG_DIR])
            .args(args)
            .env_remove("GAME_HOST_PLUGINS_SOURCE")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(effective(&[]).contains("source = \"directory\""));
    let database = effective(&["--plugins-source", "database"]);
    assert!(database.contains("source = \"database\""), "{database}");
    let output = Command::new(binary())
        .args(["serve", "--plugins-source", "somewhere"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("directory, database"),
        "{stderr}"
    );
}

#[test]
fn sighup_reads_the_fleets_releases_again_when_the_host_follows_them() {
    let dirs = Dirs::new();
    dirs.install("player");
    // A poll once a minute: only SIGHUP can bring the release in time.
    let config = dirs.root.path().join("fleet.toml");
    std::fs::write(
        &config,
        "[plugins]\nsource = \"database\"\n[fleet]\npoll_ms = 60000\n",
    )
    .unwrap();
    let (mut child, address) = serve(&dirs, &["--config", config.to_str().unwrap()]);
    let database = format!("sqlite://{}", dirs.data().join("game.db").display());
    let mall = crate::harness::library("fixture_mall_sale");
    let published = Command::new(binary())
        .arg("publish")
        .arg(&mall)
        .args([
            "--config-dir",
            crate::harness::CONFIG_DIR,
            "--database-url",
            &database,
        ])
        .output()
        .unwrap();
    assert!(published.status.success(), "{published:?}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let served = runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{address}{path}");
        let (_, login) = send(client.post(url("/login")).body(r#"{"account":"hup"}"#)).await;
        let token = login["token"].as_str().unwrap().to_owned();
        let ret = || {
            let request = client
                .post(url("/logic"))
                .bearer_auth(&token)
                .body(r#"{"cmd":"1101"}"#);
            async move { send(request).await.1["ret"].clone() }
        };
        assert_eq!(ret().await, -1, "published, but not read yet");
        signal(child.id(), "-HUP");
        for _ in 0..500 {
            if ret().await == 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    });
    signal(child.id(), "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(served, "SIGHUP loaded the published release");
}
