//! Hot swap: a library that lands in the plugins directory replaces the serving version while
//! clients play, with no failed request; the old version drains, retires and leaves memory.
//! Bad libraries are refused and the old version keeps serving. Removal, rollback, and a
//! library that pins itself in memory.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::harness::{library, Dirs, TestHost, DEMO_MODULES};
use host::plugins::events::{Event, EventKind};
use host::plugins::retire::still_mapped;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SWAP: &str = "libswap.so";

/// A host with the demo modules and build "a" of module `swap`, watching with a short debounce.
async fn swap_host(tweak: impl FnOnce(&mut host::Config)) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    std::fs::copy(library("fixture_swap_a"), dirs.plugins().join(SWAP)).unwrap();
    TestHost::start_in(dirs, |config| {
        config.plugins.debounce_ms = 50;
        tweak(config);
    })
    .await
}

fn build(name: &str) -> Vec<u8> {
    std::fs::read(library(&format!("fixture_swap_{name}"))).unwrap()
}

/// How a designer ships a file.
#[derive(Clone, Copy, Debug)]
enum Ship {
    /// `cp new.so libswap.so`: truncate and rewrite the same file in place.
    CopyInPlace,
    /// Write a temporary file, then `mv` it over the library (editors, rsync).
    AtomicRename,
}

fn ship(dir: &Path, bytes: &[u8], how: Ship) {
    let target = dir.join(SWAP);
    match how {
        Ship::CopyInPlace => std::fs::write(&target, bytes).unwrap(),
        Ship::AtomicRename => {
            let temp = dir.join(".libswap.so.partial");
            std::fs::write(&temp, bytes).unwrap();
            std::fs::rename(&temp, &target).unwrap();
        }
    }
}

/// Which build answers 9501 now (`None` if no module serves it).
async fn serving_build(host: &TestHost, token: &str) -> Option<String> {
    let (_, body) = host.logic(token, "9501", json!({})).await;
    body["data"]["build"].as_str().map(str::to_owned)
}

/// Waits until `done` holds, polling; fails after `within`.
async fn wait_until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for_build(host: &TestHost, token: &str, build: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("build {build} to serve"),
        || async { serving_build(host, token).await.as_deref() == Some(build) },
    )
    .await;
}

fn events(host: &TestHost) -> Vec<Event> {
    host.state.registry.events().recent()
}

fn has_event(host: &TestHost, kind: EventKind, module: &str, generation: u64) -> bool {
    events(host)
        .iter()
        .any(|e| e.kind == kind && e.module == module && e.generation == generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_swaps_under_load_fail_no_request_and_every_old_version_leaves_memory() {
    let host = Arc::new(swap_host(|_| {}).await);
    let (_, token) = host.login("load").await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for n in 0..8 {
        let (host, stop) = (host.clone(), stop.clone());
        let (_, token) = host.login(&format!("client-{n}")).await;
        clients.push(tokio::spawn(async move {
            let (mut replies, mut failures) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = host.logic(&token, "9501", json!({})).await;
                match body["data"]["build"].as_str() {
                    Some(build) if status == 200 && body["ret"] == 0 => {
                        replies.push(build.to_owned())
                    }
                    _ => failures.push(format!("{status} {body}")),
                }
            }
            (replies, failures)
        }));
    }

    let mut shadows = vec![host.state.registry.route("95").unwrap().shadow.clone()];
    for swap in 0..50 {
        let (bytes, name) = if swap % 2 == 0 {
            (build("b"), "b")
        } else {
            (build("a"), "a")
        };
        let how = if swap % 4 < 2 {
            Ship::CopyInPlace
        } else {
            Ship::AtomicRename
        };
        ship(&host.dirs.plugins(), &bytes, how);
        wait_for_build(&host, &token, name).await;
        shadows.push(host.state.registry.route("95").unwrap().shadow.clone());
    }
    stop.store(true, Ordering::Relaxed);
    let mut served = 0;
    for client in clients {
        let (replies, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during swaps: {failures:?}"
        );
        assert!(replies.iter().all(|b| b == "a" || b == "b"));
        served += replies.len();
    }
    assert!(served > 100, "the clients kept playing: {served} replies");
    for _ in 0..20 {
        assert_eq!(
            serving_build(&host, &token).await.as_deref(),
            Some("a"),
            "the latest build serves"
        );
    }

    let retirement = host.state.registry.retirement();
    let start = Instant::now();
    while retirement.retired_count() < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for 50 versions to retire: {} retired, draining: {:?}",
            retirement.retired_count(),
            retirement.draining()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(retirement.leaked().is_empty(), "{:?}", retirement.leaked());
    assert!(retirement.draining().is_empty());
    let current = host.state.registry.route("95").unwrap().shadow.clone();
    for shadow in shadows.iter().filter(|s| **s != current) {
        assert!(
            !still_mapped(shadow),
            "{} is still mapped",
            shadow.display()
        );
    }
    assert!(still_mapped(&current), "the serving version is mapped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_command_finishes_on_the_old_version_during_a_swap() {
    let host = Arc::new(swap_host(|_| {}).await);
    let (_, token) = host.login("long").await;
    let (_, other) = host.login("other").await;
    let long = {
        let (host, token) = (host.clone(), token.clone());
        tokio::spawn(async move { host.logic(&token, "9503", json!({ "ms": 2000 })).await })
    };
    let old = host.state.registry.route("95").unwrap();
    wait_until(Duration::from_secs(5), "the long call to start", || async {
        old.stats.in_flight() == 1
    })
    .await;
    ship(&host.dirs.plugins(), &build("b"), Ship::AtomicRename);
    wait_for_build(&host, &other, "b").await;
    assert!(
        !long.is_finished(),
        "the swap did not wait for the long call"
    );
    let old_generation = old.generation;
    drop(old);

    let (status, body) = long.await.unwrap();
    assert_eq!(
        (status, &body["data"]),
        (200, &json!({ "build": "a", "slept": 2000 })),
        "{body}"
    );
    wait_until(
        Duration::from_secs(5),
        "the old version to retire",
        || async { has_event(&host, EventKind::Retire, "swap", old_generation) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_the_drain_deadline_is_reported_stuck_then_retired_when_it_returns() {
    let host = Arc::new(swap_host(|config| config.plugins.drain_deadline_secs = 1).await);
    let (_, token) = host.login("hung").await;
    let (_, other) = host.login("watcher").await;
    let hung = {
        let (host, token) = (host.clone(), token.clone());
        tokio::spawn(async move { host.logic(&token, "9503", json!({ "ms": 2500 })).await })
    };
    let old = host.state.registry.route("95").unwrap();
    let old_generation = old.generation;
    wait_until(Duration::from_secs(5), "the call to start", || async {
        old.stats.in_flight() == 1
    })
    .await;
    drop(old);
    ship(&host.dirs.plugins(), &build("b"), Ship::CopyInPlace);
    wait_for_build(&host, &other, "b").await;

    wait_until(Duration::from_secs(5), "the stuck report", || async {
        has_event(&host, EventKind::Stuck, "swap", old_generation)
    })
    .await;
    let draining = host.state.registry.retirement().draining();
    assert!(
        draining
            .iter()
            .any(|d| d.stuck && d.generation == old_generation && d.in_flight == 1),
        "{draining:?}"
    );
    assert!(
        !has_event(&host, EventKind::Retire, "swap", old_generation),
        "never unloaded while the call runs"
    );

    assert_eq!(hung.await.unwrap().1["data"]["build"], "a");
    wait_until(Duration::from_secs(5), "the retirement", || async {
        has_event(&host, EventKind::Retire, "swap", old_generation)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_libraries_are_refused_and_the_old_version_keeps_serving() {
    let host = swap_host(|config| {
        config
            .modules
            .insert("faulty".into(), json!({ "init": "panic" }));
    })
    .await;
    let (_, token) = host.login("steady").await;
    let read = |name: &str| std::fs::read(library(name)).unwrap();
    let a = build("a");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"definitely not a library".repeat(50),
            "not a loadable library",
        ),
        (
            "truncated",
            a[..a.len() / 3].to_vec(),
            "still being written",
        ),
        (
            "incompatible",
            read("fixture_incompatible"),
            "plugin-api 0.99.0",
        ),
        ("init panics", read("fixture_faulty"), "init panicked"),
        ("prefix clash", read("fixture_clash"), "prefix 11"),
    ];
    for (what, bytes, reason) in cases {
        let refusals = events(&host)
            .iter()
            .filter(|e| e.kind == EventKind::Refuse)
            .count();
        ship(&host.dirs.plugins(), &bytes, Ship::AtomicRename);
        wait_until(
            Duration::from_secs(10),
            &format!("{what} to be refused"),
            || async {
                events(&host)
                    .iter()
                    .filter(|e| e.kind == EventKind::Refuse)
                    .count()
                    > refusals
            },
        )
        .await;
        let refusal = events(&host)
            .into_iter()
            .rev()
            .find(|e| e.kind == EventKind::Refuse)
            .unwrap();
        assert!(
            refusal.message.contains(reason) && refusal.file.ends_with(SWAP),
            "{what}: {refusal:?}"
        );
        assert_eq!(
            serving_build(&host, &token).await.as_deref(),
            Some("a"),
            "{what}: the old version serves"
        );
    }
    let (_, token_2) = host.login("mall-still").await;
    host.ok(&token_2, "1101", json!({})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_content_is_not_reloaded() {
    let host = swap_host(|_| {}).await;
    let generation = host.state.registry.route("95").unwrap().generation;
    ship(&host.dirs.plugins(), &build("a"), Ship::CopyInPlace);
    ship(&host.dirs.plugins(), &build("b"), Ship::AtomicRename);
    let (_, token) = host.login("same").await;
    wait_for_build(&host, &token, "b").await;
    let swaps = events(&host)
        .iter()
        .filter(|e| e.kind == EventKind::Swap)
        .count();
    assert_eq!(
        swaps,
        1,
        "the rewrite of identical bytes was skipped: {:?}",
        events(&host)
    );
    assert_eq!(
        host.state.registry.route("95").unwrap().generation,
        generation + 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removal_retires_the_module_and_putting_it_back_loads_it_again() {
    let host = swap_host(|_| {}).await;
    let (_, token) = host.login("gone").await;
    std::fs::remove_file(host.dirs.plugins().join(SWAP)).unwrap();
    wait_until(Duration::from_secs(10), "the module to go", || async {
        host.logic(&token, "9501", json!({})).await.1["ret"] == -1
    })
    .await;
    wait_until(Duration::from_secs(5), "its retirement", || async {
        has_event(&host, EventKind::Retire, "swap", 1)
    })
    .await;
    ship(&host.dirs.plugins(), &build("b"), Ship::AtomicRename);
    wait_for_build(&host, &token, "b").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_previous_version() {
    let host = swap_host(|_| {}).await;
    let (_, token) = host.login("oops").await;
    ship(&host.dirs.plugins(), &build("b"), Ship::AtomicRename);
    wait_for_build(&host, &token, "b").await;
    let registry = &host.state.registry;
    assert_eq!(registry.history("swap").len(), 1);
    let change = registry.rollback("swap").await.unwrap();
    assert!(
        matches!(change, host::plugins::Change::Swapped { .. }),
        "{change:?}"
    );
    assert_eq!(serving_build(&host, &token).await.as_deref(), Some("a"));
    assert!(events(&host).iter().any(|e| e.kind == EventKind::Rollback));
    let again = registry.rollback("swap").await.unwrap_err().to_string();
    assert!(again.contains("no previous version"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_library_that_pins_itself_in_memory_is_reported_as_leaked() {
    let dirs = Dirs::new();
    let leaky = dirs.install("fixture_leaky");
    let host = TestHost::start_in(dirs, |config| config.plugins.debounce_ms = 50).await;
    let (_, token) = host.login("leak").await;
    // Touch the thread-local on every module thread.
    for _ in 0..16 {
        host.ok(&token, "9601", json!({ "x": 1 })).await;
    }
    std::fs::remove_file(leaky).unwrap();
    let retirement = host.state.registry.retirement();
    wait_until(Duration::from_secs(10), "the leak report", || async {
        !retirement.leaked().is_empty()
    })
    .await;
    let leaked = retirement.leaked();
    assert_eq!(leaked[0].module, "leaky");
    assert!(leaked[0].reason.contains("thread-local"), "{leaked:?}");
    assert!(events(&host)
        .iter()
        .any(|e| e.kind == EventKind::Leak && e.module == "leaky"));
    assert_eq!(retirement.retired_count(), 0);
}
