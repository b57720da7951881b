//! Module crates as a newcomer makes them, built by a real `cargo`:
//! - `game-host new-module`: the crate it writes builds, passes its own tests, passes
//!   `game-host check`, and is served: a typed request that fits is answered, one that does
//!   not gets the default `bad_request` refusal naming the field.
//! - The bank of docs/modules.md, taken from the page's code blocks: it builds, passes its
//!   tests and passes `game-host check`, as the page says it does.
//!
//! Each is built offline from the workspace's `Cargo.lock` (the same dependency versions,
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

/// The `rust` or `toml` code block under `heading` in docs/modules.md (the first after it).
fn block_under(page: &str, heading: &str, lang: &str) -> String {
    let section = &page[page
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} is gone"))..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).unwrap() + fence.len();
    section[start..][..section[start..].find("```").unwrap()].to_owned()
}

#[test]
fn the_bank_of_the_module_guide_builds_passes_its_tests_and_its_check() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let page = std::fs::read_to_string(root.join("docs/modules.md")).unwrap();
    // A workspace like this one, with plugin-api and the bank as its members.
    let out = tempfile::tempdir().unwrap();
    let mut manifest: toml_edit::DocumentMut = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut members = toml_edit::Array::new();
    members.push("plugin-api");
    members.push("plugins/bank");
    manifest["workspace"]["members"] = toml_edit::value(members);
    std::fs::write(out.path().join("Cargo.toml"), manifest.to_string()).unwrap();
    std::fs::copy(root.join("Cargo.lock"), out.path().join("Cargo.lock")).unwrap();
    copy_folder(&root.join("plugin-api"), &out.path().join("plugin-api"));
    let bank = out.path().join("plugins/bank");
    std::fs::create_dir_all(bank.join("src/rules")).unwrap();
    for (file, heading, lang) in [
        ("Cargo.toml", "### 2. The crate", "toml"),
        ("src/lib.rs", "### 3. `src/lib.rs`", "rust"),
        ("src/rules.rs", "### 4. `src/rules.rs`", "rust"),
        ("src/rules/tests.rs", "### 5. `src/rules/tests.rs`", "rust"),
    ] {
        std::fs::write(bank.join(file), block_under(&page, heading, lang)).unwrap();
    }

    cargo(out.path(), &["test", "--quiet", "-p", "bank"]);
    cargo(out.path(), &["build", "--quiet", "-p", "bank"]);
    let checked = Command::new(binary())
        .args(["check", "--config-dir", CONFIG_DIR])
        .arg(target_dir().join("../scaffold/debug/libbank.so"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{report}");
    // What the guide's step 6 shows `check` printing.
    let shown = block_under(&page, "### 6. Build and check", "text");
    // (Not its first line: the path is the guide's, not this build's.)
    for line in shown
        .lines()
        .filter(|l| !l.contains("...") && !l.starts_with("ok: "))
    {
        assert!(
            report.lines().any(|l| l == line),
            "the guide shows `{line}`; check printed:\n{report}"
        );
    }
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
