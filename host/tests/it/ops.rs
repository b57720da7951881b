//! What ops rely on, on the real binary: the log files and a clean SIGTERM that loses no line,
//! `game-host config` and the config precedence, `/metrics`, socket activation, and the
//! zero-downtime restart (`SIGUSR2`, `POST /admin/restart`) under load.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::harness::{binary, send, Dirs, TestHost, CONFIG_DIR};
use crate::served::{
    assert_each_purchase_applied_once, buyers, login, runtime, serve_command, signal_pid, start,
    state_of, successor_announced, wait_gone, KillOnDrop, Load,
};
use serde_json::json;
use std::process::Command;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_log_files_have_their_levels_and_sigterm_loses_no_line() {
    let dirs = Dirs::new();
    let served = start(serve_command(&dirs));
    const REQUESTS: usize = 300;
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &served.url("/login"), "logger").await;
        for n in 0..REQUESTS {
            let cmd = if n % 2 == 0 { "1203" } else { "1101" };
            let (status, body) = send(
                client
                    .post(served.url("/logic"))
                    .bearer_auth(&token)
                    .json(&json!({ "cmd": cmd })),
            )
            .await;
            assert_eq!((status, body["ret"].as_i64()), (200, Some(0)), "{body}");
        }
        // A module's own line: the mall logs each purchase through the host API.
        let (_, bought) = send(
            client
                .post(served.url("/logic"))
                .bearer_auth(&token)
                .json(&json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } })),
        )
        .await;
        assert_eq!(bought["ret"], 0, "{bought}");
        // A host error: an unknown module.
        let (_, unknown) = send(
            client
                .post(served.url("/logic"))
                .bearer_auth(&token)
                .json(&json!({ "cmd": "9901" })),
        )
        .await;
        assert_eq!(unknown["ret"], -1, "{unknown}");
    });
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));

    let info = read(&dirs.log().join("game/info.log"));
    let access: Vec<&str> = info
        .lines()
        .filter(|l| l.contains("] request method=POST path=/logic "))
        .collect();
    assert_eq!(
        access.len(),
        REQUESTS + 2,
        "one access line per request, none lost"
    );
    let simple = regex::Regex::new(
        r"^\[INFO\] \[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] request method=POST path=/logic status=200 ret=0 cmd=1203 player=[0-9a-f]+ ms=\d+\.\d{3} host=\S+$",
    )
    .unwrap();
    assert!(simple.is_match(access[0]), "{}", access[0]);
    assert!(
        info.lines()
            .any(|l| l.contains("bought 1 x potion ") && l.contains("module=mall version=0.1.0")),
        "a module's line names the module and its version:\n{info}"
    );
    assert!(
        info.lines().all(|l| !l.starts_with("[DEBUG]")),
        "info.log takes INFO and above"
    );
    let last = info.lines().last().unwrap();
    assert!(
        last.contains("] shut down host="),
        "the log is flushed to its last line: {last}"
    );

    let debug = read(&dirs.log().join("host/debug.log"));
    assert!(
        debug.lines().any(|l| l.starts_with("[DEBUG] ")),
        "debug.log takes DEBUG"
    );
    let verbose = regex::Regex::new(
        r"^\[[A-Z]+\] \[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] \[[\w/]+\.rs:\d+\] ",
    )
    .unwrap();
    assert!(debug.lines().all(|l| verbose.is_match(l)), "{debug}");
    assert_eq!(
        debug
            .lines()
            .filter(|l| l.contains("] request method="))
            .count(),
        REQUESTS + 3,
        "debug.log has every request, the login too"
    );

    let error = read(&dirs.log().join("game/error.log"));
    assert!(
        error
            .lines()
            .all(|l| l.starts_with("[ERROR]") || l.starts_with("[CRITICAL]")),
        "{error}"
    );
}

#[test]
fn config_prints_the_effective_config_flags_over_environment_over_profile() {
    let output = Command::new(binary())
        .args(["config", "--profile", "prod", "--config-dir", CONFIG_DIR])
        .args(["--listen", "127.0.0.1:7000"])
        .env("GAME_HOST_SERVER_LISTEN", "0.0.0.0:9000")
        .env("GAME_HOST_SERVER_SHUTDOWN_GRACE_SECS", "45")
        .env("GAME_HOST_ADMIN_TOKEN", "s3cret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.starts_with("# effective configuration"), "{stdout}");
    assert!(
        !stdout.contains("s3cret"),
        "the token is redacted:\n{stdout}"
    );
    let config: toml::Table = toml::from_str(&stdout).unwrap();
    let server = &config["server"];
    assert_eq!(
        server["listen"].as_str(),
        Some("127.0.0.1:7000"),
        "a flag beats the environment"
    );
    assert_eq!(
        server["shutdown_grace_secs"].as_integer(),
        Some(45),
        "the environment beats prod"
    );
    assert_eq!(
        server["body_limit"].as_integer(),
        Some(1_048_576),
        "a default stays"
    );
    assert_eq!(
        config["paths"]["log_dir"].as_str(),
        Some("/srv/game-host/log"),
        "prod's own"
    );
    assert_eq!(
        config["log"]["files"]["info"]["keep"].as_integer(),
        Some(20)
    );
}

#[test]
fn a_bad_source_stops_the_binary_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    std::fs::write(&file, "[log.files.info]\nrotate = \"hourly\"\n").unwrap();
    /// Arguments and environment that must stop the binary, and words its message must have.
    struct Bad<'a> {
        args: &'a [&'a str],
        env: Option<(&'a str, &'a str)>,
        words: &'a [&'a str],
    }
    let cases = [
        Bad {
            args: &["--config", file.to_str().unwrap()],
            env: None,
            words: &["site.toml", "hourly", "daily"],
        },
        Bad {
            args: &[],
            env: Some(("GAME_HOST_PLUGINS_WORKERS", "lots")),
            words: &["GAME_HOST_PLUGINS_WORKERS", "integer"],
        },
        Bad {
            args: &[],
            env: Some(("GAME_HOST_SERVER_LISTN", "x")),
            words: &["GAME_HOST_SERVER_LISTN", "GAME_HOST_SERVER_LISTEN"],
        },
    ];
    for Bad { args, env, words } in cases {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--config-dir", CONFIG_DIR])
            .args(args);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        for word in words {
            assert!(stderr.contains(word), "`{word}` missing: {stderr}");
        }
    }
}

/// The value of the sample `name{labels}` in a Prometheus text exposition.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_modules_and_sessions() {
    let host = TestHost::start().await;
    let (_, token) = host.login("metered").await;
    for _ in 0..3 {
        host.ok(&token, "1203", json!({})).await;
    }
    let (_, refused) = host
        .logic(&token, "1103", json!({ "id": "potion", "count": 1000 }))
        .await;
    assert_eq!(refused["ret"], 3, "{refused}");
    let (_, unknown) = host.logic(&token, "9901", json!({})).await;
    assert_eq!(unknown["ret"], -1);
    host.get("/health").await;

    let response = reqwest::get(format!("http://{}/metrics", host.admin_addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let metrics = response.text().await.unwrap();
    let samples = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    for line in samples {
        assert!(
            line.contains(r#"host="test-host""#),
            "every series names the host: {line}"
        );
    }
    let metrics = metrics
        .replace(r#"{host="test-host"}"#, "")
        .replace(r#"host="test-host","#, "");
    let expect = |series: &str, value: f64| {
        assert_eq!(
            sample(&metrics, series),
            Some(value),
            "{series} in\n{metrics}"
        );
    };
    expect(
        r#"game_host_requests_total{endpoint="logic",cmd="1203",ret="0"}"#,
        3.0,
    );
    expect(
        r#"game_host_requests_total{endpoint="logic",cmd="1103",ret="3"}"#,
        1.0,
    );
    expect(
        r#"game_host_requests_total{endpoint="logic",cmd="other",ret="-1"}"#,
        1.0,
    );
    expect(
        r#"game_host_requests_total{endpoint="login",cmd="",ret="0"}"#,
        1.0,
    );
    expect(
        r#"game_host_requests_total{endpoint="health",cmd="",ret="0"}"#,
        1.0,
    );
    expect(
        r#"game_host_request_duration_seconds_count{endpoint="logic",cmd="1203"}"#,
        3.0,
    );
    expect(
        r#"game_host_request_duration_seconds_bucket{le="+Inf",endpoint="logic",cmd="1203"}"#,
        3.0,
    );
    expect("game_host_requests_in_flight", 0.0);
    expect(
        r#"game_host_module_serving{module="mall",version="0.1.0"}"#,
        1.0,
    );
    expect(
        r#"game_host_module_events_total{module="mall",event="load"}"#,
        1.0,
    );
    let demo_modules = crate::harness::DEMO_MODULES.len() as f64;
    expect(
        r#"game_host_module_versions{state="serving"}"#,
        demo_modules,
    );
    expect(r#"game_host_module_versions{state="draining"}"#, 0.0);
    expect(r#"game_host_module_versions{state="not_unloaded"}"#, 0.0);
    expect("game_host_sessions", 1.0);
    expect("game_host_log_messages_dropped_total", 0.0);

    // The admin token guards /metrics as it guards the rest of the admin API.
    host.stop().await;
}

#[tokio::test]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let dirs = Dirs::new();
    let host = TestHost::start_in(dirs, |c| c.admin.token = Some("t0ken".into())).await;
    let url = format!("http://{}/metrics", host.admin_addr);
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let authorized = client.get(&url).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(authorized.status(), 200);
    assert!(authorized
        .text()
        .await
        .unwrap()
        .contains("game_host_requests_in_flight"));
    host.stop().await;
}

#[test]
fn systemd_socket_activation_serves_on_the_passed_socket() {
    use command_fds::{CommandFdExt, FdMapping};
    let dirs = Dirs::new();
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let mut command = serve_command(&dirs);
    command
        .env("LISTEN_FDS", "1")
        .fd_mappings(vec![FdMapping {
            parent_fd: socket.into(),
            child_fd: 3,
        }])
        .unwrap();
    let served = start(command);
    assert_eq!(
        served.addr.to_string(),
        address,
        "the passed socket, not --listen 127.0.0.1:0"
    );
    runtime().block_on(async {
        let (status, body) = send(reqwest::Client::new().get(served.url("/health"))).await;
        assert_eq!((status, body), (200, json!({ "ret": 0, "status": "ok" })));
    });
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));
}

/// How a restart is asked for.
enum Trigger {
    Signal,
    AdminCall,
}

/// Restarts the binary while clients keep sending commands; no request may fail. Returns the
/// successor's pid (already stopped).
fn restart_under_load(trigger: Trigger) {
    let dirs = Dirs::new();
    let mut served = start(serve_command(&dirs));
    let old_pid = served.child.id();
    let rt = runtime();
    let successor = rt.block_on(async {
        let load = Load::start(served.addr, 4).await;
        load.serves(200).await;
        let successor = match trigger {
            Trigger::Signal => {
                served.signal("-USR2");
                None
            }
            Trigger::AdminCall => {
                let (status, reply) =
                    send(reqwest::Client::new().post(served.admin_url("/admin/restart"))).await;
                assert_eq!((status, &reply["ret"]), (200, &json!(0)), "{reply}");
                Some(reply["successor_pid"].as_u64().unwrap() as u32)
            }
        };
        let (announced, lines) = successor_announced(&mut served);
        let kill_successor_on_failure = KillOnDrop(announced);
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("listening on {}", served.addr)),
            "the successor listens on the same address: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("admin listening on {}", served.admin_addr)),
            "and takes the admin socket too: {lines:?}"
        );
        if let Some(pid) = successor {
            assert_eq!(pid, announced);
        }
        let status = tokio::task::block_in_place(|| served.child.wait().unwrap());
        assert_eq!(
            status.code(),
            Some(0),
            "the old host drains and exits cleanly"
        );
        // Only the successor is left to answer now.
        load.serves(200).await;
        let report = load.finish().await;
        assert!(
            report.errors.is_empty(),
            "{} of {} requests failed: {:#?}",
            report.errors.len(),
            report.total_ok() + report.errors.len() as u64,
            report.errors
        );
        assert_ne!(announced, old_pid);
        // It passed: the successor is stopped gracefully below.
        std::mem::forget(kill_successor_on_failure);
        announced
    });
    signal_pid(successor, "-TERM");
    wait_gone(successor);
    let info = read(&dirs.log().join("game/info.log"));
    assert!(
        info.contains(&format!("successor_pid={successor}")),
        "{info}"
    );
}

#[test]
fn sigusr2_restarts_the_binary_under_load_without_a_failed_request() {
    restart_under_load(Trigger::Signal);
}

#[test]
fn admin_restart_restarts_the_binary_under_load_without_a_failed_request() {
    restart_under_load(Trigger::AdminCall);
}

/// Purchases under load across a restart, with both hosts on the SQLite file for a moment: each
/// acknowledged purchase is in the data exactly once, and the successor keeps players in memory
/// only once its predecessor has exited.
#[test]
fn a_restart_under_purchases_loses_no_purchase_and_applies_none_twice() {
    const BUYERS: usize = 8;
    let dirs = Dirs::new();
    let mut served = start(serve_command(&dirs));
    let rt = runtime();
    let successor = rt.block_on(async {
        let client = reqwest::Client::new();
        let admin_url = |path: &str| served.admin_url(path);
        let (tokens, starts) = buyers(&client, served.addr, admin_url, BUYERS).await;
        let buy = json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } });
        let load = Load::run(served.addr, tokens.clone(), buy);
        load.serves(300).await;
        served.signal("-USR2");
        let (successor, _) = successor_announced(&mut served);
        let kill_successor_on_failure = KillOnDrop(successor);
        let status = tokio::task::block_in_place(|| served.child.wait().unwrap());
        assert_eq!(status.code(), Some(0), "the old host drains and exits");
        load.serves(300).await;
        let report = load.finish().await;
        assert!(
            report.errors.is_empty(),
            "{} purchases failed: {:#?}",
            report.errors.len(),
            report.errors
        );
        assert_each_purchase_applied_once(&client, served.addr, &tokens, &starts, &report.ok).await;
        std::mem::forget(kill_successor_on_failure);
        successor
    });
    signal_pid(successor, "-TERM");
    wait_gone(successor);
    // The successor read the file until its predecessor had gone, then kept players in memory.
    let info = read(&dirs.log().join("game/info.log"));
    assert!(
        info.contains("restart: the predecessor has exited; this host is the database's only user"),
        "{info}"
    );
}

/// The moment a stale memory would show: one player buys on the successor and on a connection
/// still open to the old host (which serves it while it drains), in turn. Each host must read
/// the other's purchases from the file.
#[test]
fn a_purchase_on_the_draining_host_counts_on_its_successor() {
    let dirs = Dirs::new();
    let mut served = start(serve_command(&dirs));
    let rt = runtime();
    let successor = rt.block_on(async {
        // Client `old` keeps one connection to the old host; `new` connects after the restart.
        let old = reqwest::Client::new();
        let new = reqwest::Client::new();
        let token = login(&old, &served.url("/login"), "buyer").await;
        let start = state_of(&old, served.addr, &token).await;
        let logic = served.url("/logic");
        let buy = |client: &reqwest::Client| {
            client
                .post(&logic)
                .bearer_auth(&token)
                .json(&json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } }))
        };
        served.signal("-USR2");
        let (successor, _) = successor_announced(&mut served);
        let kill_successor_on_failure = KillOnDrop(successor);
        // The old host stops accepting right after it is told; it keeps its open connections
        // (CLOSE_LINGER, 2 s) and serves what comes on them.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for client in [&new, &old, &new, &old] {
            let (status, reply) = send(buy(client)).await;
            assert_eq!((status, &reply["ret"]), (200, &json!(0)), "{reply}");
        }
        let status = tokio::task::block_in_place(|| served.child.wait().unwrap());
        assert_eq!(status.code(), Some(0), "the old host drains and exits");
        let end = state_of(&new, served.addr, &token).await;
        assert_eq!(
            end["gold"].as_i64().unwrap(),
            start["gold"].as_i64().unwrap() - 4 * 50,
            "four potions bought: {start} -> {end}"
        );
        assert_eq!(end["items"]["potion"], 4, "{end}");
        std::mem::forget(kill_successor_on_failure);
        successor
    });
    signal_pid(successor, "-TERM");
    wait_gone(successor);
}

#[test]
fn a_successor_that_cannot_start_leaves_the_old_host_serving() {
    let dirs = Dirs::new();
    let site = dirs.root.path().join("site.toml");
    std::fs::write(&site, "[session]\nttl_secs = 3600\n").unwrap();
    let mut command = serve_command(&dirs);
    command.arg("--config").arg(&site);
    let served = start(command);
    // Someone breaks the config file; the successor reads it and refuses to start.
    std::fs::write(&site, "[session]\nttl_seconds = 3600\n").unwrap();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let (status, reply) = send(client.post(served.admin_url("/admin/restart"))).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["ret"], 1, "{reply}");
        assert!(
            reply["msg"]
                .as_str()
                .unwrap()
                .contains("exited before it was ready"),
            "{reply}"
        );
        let (status, health) = send(client.get(served.url("/health"))).await;
        assert_eq!(
            (status, health["ret"].as_i64()),
            (200, Some(0)),
            "the old host serves on"
        );
    });
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));
}

#[test]
fn every_admin_change_and_every_refused_token_is_logged_with_its_caller() {
    let dirs = Dirs::new();
    let mut command = serve_command(&dirs);
    command.env("GAME_HOST_ADMIN_TOKEN", "the-admin-token");
    let served = start(command);
    // The host sees the client's address: 127.0.0.1 and a port of its own.
    let caller = "caller=127.0.0.1:";
    runtime().block_on(async {
        // One connection for all three calls, so that its address is the caller logged.
        let client = reqwest::Client::new();
        let reload = served.admin_url("/admin/modules/mall/reload");
        let (status, _) = send(client.post(&reload).bearer_auth("a-guess")).await;
        assert_eq!(status, 401);
        let (status, body) = send(client.post(&reload).bearer_auth("the-admin-token")).await;
        assert_eq!((status, body["ret"].as_i64()), (200, Some(0)), "{body}");
        let (status, _) = send(
            client
                .get(served.admin_url("/admin/modules"))
                .bearer_auth("the-admin-token"),
        )
        .await;
        assert_eq!(status, 200);
    });
    served.signal("-TERM");
    assert_eq!(served.wait(), Some(0));

    let info = read(&dirs.log().join("game/info.log"));
    let line = |needle: &str| {
        info.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with `{needle}` in:\n{info}"))
            .to_owned()
    };
    let refused = line("admin request refused");
    assert!(
        refused.contains("path=/admin/modules/mall/reload") && refused.contains(caller),
        "{refused}"
    );
    assert!(
        !refused.contains("a-guess"),
        "the guess is not logged: {refused}"
    );
    let change = line("admin change");
    assert!(
        change.contains("method=POST") && change.contains("status=200") && change.contains(caller),
        "{change}"
    );
    assert!(line("admin request method=GET").contains(caller));
    assert!(
        !info.contains("the-admin-token"),
        "the token is never logged"
    );
}
