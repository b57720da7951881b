//! A module that hangs or runs away fails alone: its calls past their deadline get -7 and
//! are counted stuck; at `plugins.max_stuck_calls` its commands get -6 at once and it is
//! reported unhealthy, while every other module keeps serving; a reply over
//! `plugins.max_reply_bytes` gets -5 and commits nothing.

use crate::harness::TestHost;
use crate::modules::with_faulty;
use crate::ops::sample;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

async fn faulty_status(host: &TestHost) -> Value {
    let (_, body) = host.admin(Method::GET, "/admin/modules", None).await;
    body["modules"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "faulty"))
        .cloned()
        .unwrap_or_else(|| panic!("faulty is listed: {body}"))
}

/// A host whose `faulty` module has a deadline of `deadline_ms` (the others a minute), with
/// `workers` threads and a cap of 2 stuck calls; the gate file that releases its hung calls
/// (9015), and the data that makes a call hang on it.
async fn with_hanging_faulty(workers: usize, deadline_ms: u64) -> (TestHost, PathBuf, Value) {
    let host = with_faulty(|config| {
        config.plugins.workers = workers;
        config.plugins.call_timeout_ms = 60_000;
        config
            .plugins
            .call_timeout_ms_per_module
            .insert("faulty".into(), deadline_ms);
        config.plugins.max_stuck_calls = 2;
    })
    .await;
    let gate = host.dirs.data().join("release-the-calls");
    let hang = json!({ "path": gate.display().to_string() });
    (host, gate, hang)
}

/// Opens the gate and waits until every stuck call of `faulty` has returned.
async fn release(host: &TestHost, gate: &Path) {
    std::fs::write(gate, b"").expect("the gate opens");
    let deadline = Instant::now() + Duration::from_secs(30);
    while faulty_status(host).await["stuck_calls"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the stuck calls return once released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_module_is_capped_and_reported_unhealthy_while_the_others_serve() {
    // One thread only: without spares, a single hung call would stall every module.
    let (host, gate, hang) = with_hanging_faulty(1, 200).await;
    let (_, first) = host.login("first").await;
    let (_, second) = host.login("second").await;

    for token in [&first, &second] {
        let (status, body) = host.logic(token, "9015", hang.clone()).await;
        assert_eq!((status, body["ret"].as_i64()), (504, Some(-7)), "{body}");
        assert!(
            body["msg"].as_str().unwrap().contains("200 ms"),
            "the module's own deadline: {body}"
        );
    }
    let status = faulty_status(&host).await;
    assert_eq!(
        (status["stuck_calls"].as_u64(), status["healthy"].as_bool()),
        (Some(2), Some(false)),
        "{status}"
    );
    let text = host.metrics().await;
    let version = status["version"].as_str().unwrap();
    let labels = format!("{{module=\"faulty\",version=\"{version}\"}}");
    assert_eq!(
        sample(&text, &format!("game_host_module_healthy{labels}")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("game_host_module_stuck_calls{labels}")),
        Some(2.0)
    );

    // At the cap: refused at once, without a call (an echo would otherwise answer).
    let (status, body) = host.logic(&first, "9001", json!({})).await;
    assert_eq!(
        (status, body["ret"].as_i64(), body["cmd"].as_str()),
        (503, Some(-6), Some("9002")),
        "{body}"
    );
    assert!(
        !body["msg"].as_str().unwrap().contains("max_stuck_calls"),
        "no internals: {body}"
    );
    // The other modules still run, on the spare threads.
    assert_eq!(host.ok(&first, "1203", json!({})).await["gold"], 1000);
    assert_eq!(
        host.ok(&second, "1001", json!({})).await["ret"],
        Value::Null
    );

    release(&host, &gate).await;
    assert_eq!(faulty_status(&host).await["healthy"], true);
    assert_eq!(
        host.ok(&first, "9001", json!({ "n": 1 })).await,
        json!({ "echo": { "n": 1 } })
    );
    let text = host.metrics().await;
    assert_eq!(
        sample(&text, &format!("game_host_module_healthy{labels}")),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_over_the_limit_gets_minus_5_and_commits_nothing() {
    let host = with_faulty(|config| config.plugins.max_reply_bytes = 4096).await;
    let (_, token) = host.login("greedy").await;
    let gold = |body: Value| body["gold"].as_i64().unwrap();
    let before = gold(host.ok(&token, "1203", json!({})).await);

    let (status, body) = host.logic(&token, "9017", json!({ "bytes": 10_000 })).await;
    assert_eq!(
        (status, body["ret"].as_i64(), body["cmd"].as_str()),
        (500, Some(-5), Some("9018")),
        "{body}"
    );
    assert!(
        body.to_string().len() < 1000,
        "the blob is not passed on: {body}"
    );
    assert_eq!(
        gold(host.ok(&token, "1203", json!({})).await),
        before,
        "nothing committed"
    );

    let small = host.ok(&token, "9017", json!({ "bytes": 100 })).await;
    assert_eq!(small["blob"].as_str().map(str::len), Some(100));
    assert_eq!(
        gold(host.ok(&token, "1203", json!({})).await),
        before + 1,
        "within the limit, committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_queued_behind_a_hung_module_do_not_reach_it() {
    let (host, gate, hang) = with_hanging_faulty(2, 300).await;
    let mut tokens = Vec::new();
    for n in 0..12 {
        tokens.push(host.login(&format!("queued-{n}")).await.1);
    }
    // Twelve players at once (one player's commands would wait for each other).
    let replies = futures::future::join_all(
        tokens
            .iter()
            .map(|token| host.logic(token, "9015", hang.clone())),
    )
    .await;
    for (status, body) in &replies {
        assert!(
            matches!(
                (status, body["ret"].as_i64()),
                (504, Some(-7)) | (503, Some(-6))
            ),
            "{status} {body}"
        );
    }
    let stuck = faulty_status(&host).await["stuck_calls"].as_u64().unwrap();
    assert!(
        (2..=4).contains(&stuck),
        "the two threads' calls, and at most the cap more: {stuck} of 12 reached the module"
    );
    assert_eq!(
        host.ok(&tokens[0], "1203", json!({})).await["gold"],
        1000,
        "the other modules serve"
    );
    release(&host, &gate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_that_panics_under_load_fails_alone() {
    let host = with_faulty(|_| {}).await;
    let mut players = Vec::new();
    for n in 0..8 {
        players.push(host.login(&format!("busy-{n}")).await.1);
    }
    // Half the players read their record, half call the panicking command, all at once.
    const ROUNDS: usize = 60;
    let runs = players.iter().enumerate().map(|(n, token)| {
        let host = &host;
        async move {
            let cmd = if n % 2 == 0 { "1203" } else { "9003" };
            let mut rets = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                rets.push(host.logic(token, cmd, json!({})).await.1["ret"].as_i64());
            }
            (cmd, rets)
        }
    });
    for (cmd, rets) in futures::future::join_all(runs).await {
        let expected = if cmd == "1203" { Some(0) } else { Some(-5) };
        assert!(rets.iter().all(|ret| *ret == expected), "{cmd}: {rets:?}");
    }
    let status = faulty_status(&host).await;
    assert_eq!(
        status["failures"],
        4 * ROUNDS,
        "every panic counted: {status}"
    );
    assert_eq!(
        host.ok(&players[1], "9001", json!({ "n": 2 })).await,
        json!({ "echo": { "n": 2 } })
    );
}
