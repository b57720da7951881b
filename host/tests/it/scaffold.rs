//! `game-host new-module`: the crate it writes builds, passes its own tests, passes
//! `game-host check`, and is served: a typed request that fits is answered, one that does not
//! gets the default `bad_request` refusal naming the field.
//!
//! The crate is standalone (`--dir`), built by a real `cargo` against this workspace's
//! `plugin-api`, offline from the workspace's `Cargo.lock` (the same dependency versions,
//! already downloaded), in a build folder of its own under `target/` that later runs reuse.

use crate::harness::{binary, target_dir, Dirs, TestHost, CONFIG_DIR, DEMO_MODULES};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// Runs `cargo args` in `dir` with the scaffold's build folder; panics with its output if it
/// fails.
fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Not the outer build's settings (its package, its manifest, its jobserver).
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            command.env_remove(key);
        }
    }
    let output = command
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir().join("../scaffold"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_module_builds_passes_its_tests_and_is_served() {
    let out = tempfile::tempdir().unwrap();
    let crate_dir = out.path().join("greeter");
    let made = Command::new(binary())
        .args(["new-module", "greeter", "42", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(made.status.success(), "{said}");
    assert!(
        said.contains("game-host check target/debug/libgreeter.so"),
        "{said}"
    );
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.lines().count() < 30,
        "a one-command module is short:\n{lib}"
    );

    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    cargo(&crate_dir, &["test", "--quiet"]);
    cargo(&crate_dir, &["build", "--quiet"]);
    let built = target_dir().join("../scaffold/debug/libgreeter.so");

    let checked = Command::new(binary())
        .args(["check", "--config-dir", CONFIG_DIR])
        .arg(&built)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{report}");
    assert!(
        report.contains("commands: 4201")
            && report.contains("refusals: 1 too_long, 99 bad_request"),
        "{report}"
    );

    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    std::fs::copy(&built, dirs.plugins().join("libgreeter.so")).unwrap();
    let host = TestHost::start_in(dirs, |_| {}).await;
    let (_, token) = host.login("scaffolded").await;
    assert_eq!(
        host.ok(&token, "4201", json!({ "name": "world" })).await,
        json!({ "greeting": "Hello, world!", "greetings": 1 })
    );
    let (status, body) = host.logic(&token, "4201", json!({ "name": 7 })).await;
    assert_eq!((status, body["ret"].as_i64()), (200, Some(99)), "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("`name`: invalid type"),
        "{body}"
    );
    let (_, body) = host
        .logic(&token, "4201", json!({ "name": "x".repeat(40) }))
        .await;
    assert_eq!(body["ret"].as_i64(), Some(1), "{body}");
}
