//! Trust: the real host refuses libraries that other users could have changed, and, with
//! signatures required, libraries not signed by its key; the version serving keeps serving,
//! which HTTP shows. Keys and signatures are made by the real binary (`keygen`, `sign`), and
//! `check` gives the same verdicts.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::harness::{binary, library, Dirs, TestHost, CONFIG_DIR, DEMO_MODULES};
use host::plugins::events::EventKind;
use reqwest::Method;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SWAP: &str = "libswap.so";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn build(name: &str) -> Vec<u8> {
    std::fs::read(library(&format!("fixture_swap_{name}"))).unwrap()
}

/// Ships `bytes` as the swap module the way a deploy does (a hidden file renamed over the
/// library), with `mode`, and `owner` (uid, gid) if given.
fn ship(plugins: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) {
    let temporary = plugins.join(".libswap.so.partial");
    std::fs::write(&temporary, bytes).unwrap();
    chmod(&temporary, mode);
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&temporary, Some(uid), Some(gid)).unwrap();
    }
    std::fs::rename(&temporary, plugins.join(SWAP)).unwrap();
}

/// Which build answers 9501 now.
async fn serving_build(host: &TestHost, token: &str) -> Option<String> {
    let (_, body) = host.logic(token, "9501", json!({})).await;
    body["data"]["build"].as_str().map(str::to_owned)
}

/// Waits (up to 10 s) for a refusal of the swap library whose message has every one of
/// `words`, that came after the `seen` refusals already there; returns its message.
async fn refusal(host: &TestHost, seen: usize, words: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let refusals: Vec<String> = host
            .state
            .registry
            .events()
            .recent()
            .into_iter()
            .filter(|e| e.kind == EventKind::Refuse && e.file.ends_with(SWAP))
            .map(|e| e.message)
            .collect();
        if let Some(found) = refusals
            .iter()
            .skip(seen)
            .find(|m| words.iter().all(|w| m.contains(w)))
        {
            return found.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refusal with {words:?}; refusals: {refusals:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn refusals(host: &TestHost) -> usize {
    host.state
        .registry
        .events()
        .recent()
        .iter()
        .filter(|e| e.kind == EventKind::Refuse && e.file.ends_with(SWAP))
        .count()
}

async fn wait_for_build(host: &TestHost, token: &str, build: &str) {
    let start = Instant::now();
    while serving_build(host, token).await.as_deref() != Some(build) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "build {build} never served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Build "a" keeps answering, several times over.
async fn still_serves_a(host: &TestHost, token: &str) {
    for _ in 0..5 {
        assert_eq!(serving_build(host, token).await.as_deref(), Some("a"));
    }
}

/// A host with the demo modules and swap build "a", watching with a short debounce.
async fn swap_host(dirs: Dirs, tweak: impl FnOnce(&mut host::Config)) -> TestHost {
    TestHost::start_in(dirs, |config| {
        config.plugins.debounce_ms = 50;
        tweak(config);
    })
    .await
}

fn demo_dirs() -> Dirs {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    std::fs::write(dirs.plugins().join(SWAP), build("a")).unwrap();
    dirs
}

fn running_as_root(case: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("skipped `{case}`: only root can give a file to another user or group");
    }
    root
}

#[tokio::test(flavor = "multi_thread")]
async fn a_library_others_can_write_is_refused_with_the_fix_and_the_old_version_serves() {
    let host = swap_host(demo_dirs(), |_| {}).await;
    let (_, token) = host.login("ops").await;
    wait_for_build(&host, &token, "a").await;
    let plugins = host.dirs.plugins();
    let file = plugins.join(SWAP);

    let seen = refusals(&host);
    ship(&plugins, &build("b"), 0o666, None);
    let message = refusal(
        &host,
        seen,
        &[
            "writable by every user",
            &format!("`chmod o-w {}`", file.display()),
        ],
    )
    .await;
    assert!(
        message.starts_with(&file.display().to_string()),
        "{message}"
    );
    still_serves_a(&host, &token).await;

    // The admin API says the same, as it says any refusal.
    let (_, reload) = host
        .admin(Method::POST, "/admin/modules/swap/reload", None)
        .await;
    assert_eq!(
        (reload["ret"].as_i64(), reload["change"].as_str()),
        (Some(1), Some("refused")),
        "{reload}"
    );
    assert!(
        reload["msg"].as_str().unwrap().contains("chmod o-w"),
        "{reload}"
    );
    let (_, events) = host.admin(Method::GET, "/admin/events", None).await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "refuse" && e["message"].as_str().unwrap().contains("chmod o-w")),
        "{events}"
    );

    // The fix changes no byte, and is enough: the chmod itself is the change that loads it.
    chmod(&file, 0o644);
    wait_for_build(&host, &token, "b").await;

    // Group-writable by a group the host does not run as (root can give it one).
    if running_as_root("group-writable by another group") {
        let seen = refusals(&host);
        ship(&plugins, &build("a"), 0o664, Some((0, 65534)));
        refusal(&host, seen, &["writable by group", "`chmod g-w"]).await;
        assert_eq!(serving_build(&host, &token).await.as_deref(), Some("b"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_library_owned_by_another_user_is_refused_and_the_old_version_serves() {
    if !running_as_root("owned by another non-root user") {
        return;
    }
    let host = swap_host(demo_dirs(), |_| {}).await;
    let (_, token) = host.login("ops").await;
    wait_for_build(&host, &token, "a").await;
    let seen = refusals(&host);
    ship(
        &host.dirs.plugins(),
        &build("b"),
        0o644,
        Some((65534, 65534)),
    );
    let file = host.dirs.plugins().join(SWAP);
    refusal(
        &host,
        seen,
        &[
            "owned by user",
            &format!("`chown root:root {}`", file.display()),
        ],
    )
    .await;
    still_serves_a(&host, &token).await;
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    wait_for_build(&host, &token, "b").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_directory_every_user_can_write_loads_nothing_until_it_is_fixed() {
    let dirs = demo_dirs();
    chmod(&dirs.plugins(), 0o777);
    let host = swap_host(dirs, |_| {}).await;
    assert!(host.scan.loaded.is_empty(), "{:?}", host.scan.loaded);
    assert_eq!(host.scan.refused.len(), DEMO_MODULES.len() + 1);
    let plugins = host.dirs.plugins().display().to_string();
    for (_, reason) in &host.scan.refused {
        assert!(
            reason.contains(&format!("`chmod o-w {plugins}`")),
            "{reason}"
        );
    }
    let (_, token) = host.login("ops").await;
    let (_, body) = host.logic(&token, "9501", json!({})).await;
    assert_eq!(body["ret"], -1, "nothing serves: {body}");

    chmod(&host.dirs.plugins(), 0o755);
    let scan = host.state.registry.rescan().await.unwrap();
    assert_eq!(
        scan.loaded.len(),
        DEMO_MODULES.len() + 1,
        "{:?}",
        scan.refused
    );
    wait_for_build(&host, &token, "a").await;
}

/// `game-host` with `args`, its stdout as text.
fn run(args: &[&std::ffi::OsStr]) -> (Output, String) {
    let output = Command::new(binary())
        .args(args)
        .env_remove("GAME_HOST_TRUST_PUBLIC_KEYS")
        .env_remove("GAME_HOST_TRUST_REQUIRE_SIGNATURE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// A key pair made by `game-host keygen` in `dir`: (private, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let (output, stdout) = run(&["keygen".as_ref(), "--key".as_ref(), private.as_os_str()]);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("-----BEGIN PUBLIC KEY-----"), "{stdout}");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    (private, dir.join(format!("{name}.pub")))
}

fn sign(key: &Path, file: &Path) {
    let (output, stdout) = run(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        file.as_os_str(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains(".so.sig"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_signatures_required_only_a_build_signed_by_the_key_replaces_the_serving_one() {
    let keys = tempfile::tempdir().unwrap();
    let (ops, public) = keygen(keys.path(), "ops");
    let (stranger, _) = keygen(keys.path(), "stranger");
    let dirs = demo_dirs();
    for entry in std::fs::read_dir(dirs.plugins()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue; // a module's tables folder: only libraries are signed
        }
        sign(&ops, &path);
    }
    let host = swap_host(dirs, |config| {
        config.trust.require_signature = true;
        config.trust.public_keys = vec![public.display().to_string()];
    })
    .await;
    assert_eq!(
        host.scan.loaded.len(),
        DEMO_MODULES.len() + 1,
        "{:?}",
        host.scan.refused
    );
    let (_, token) = host.login("ops").await;
    wait_for_build(&host, &token, "a").await;
    host.ok(&token, "1101", json!({})).await; // the signed demo modules serve
    let plugins = host.dirs.plugins();
    let (file, sig) = (plugins.join(SWAP), plugins.join("libswap.so.sig"));

    // Build b beside build a's signature: badly signed.
    let seen = refusals(&host);
    ship(&plugins, &build("b"), 0o644, None);
    refusal(
        &host,
        seen,
        &["is not a valid signature", &public.display().to_string()],
    )
    .await;
    still_serves_a(&host, &token).await;

    // No signature at all.
    let seen = refusals(&host);
    std::fs::remove_file(&sig).unwrap();
    let (_, reload) = host
        .admin(Method::POST, "/admin/modules/swap/reload", None)
        .await;
    assert_eq!(reload["change"], "refused", "{reload}");
    refusal(&host, seen, &["is not signed", "game-host sign --key KEY"]).await;
    still_serves_a(&host, &token).await;

    // Signed, by a key the host does not know.
    let seen = refusals(&host);
    sign(&stranger, &file);
    refusal(&host, seen, &["is not a valid signature"]).await;
    still_serves_a(&host, &token).await;

    // Signed by the ops key: the new .sig alone is the change that loads it.
    sign(&ops, &file);
    wait_for_build(&host, &token, "b").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_requires_signatures_does_not_start_without_its_public_key() {
    let dirs = demo_dirs();
    let mut config = dirs.config();
    config.trust.require_signature = true;
    let missing = dirs.root.path().join("keys/modules.pub");
    config.trust.public_keys = vec![missing.display().to_string()];
    let deps = host::Deps::new(host::logging::discard());
    let listeners = host::Listeners::bind(&config).unwrap();
    let Err(error) = host::Host::start(config, deps, listeners).await else {
        panic!("started without its key");
    };
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()) && message.contains("game-host keygen"),
        "{message}"
    );
}

#[test]
fn keygen_sign_and_check_give_the_hosts_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "modules");
    let (again, _) = run(&["keygen".as_ref(), "--key".as_ref(), key.as_os_str()]);
    assert!(!again.status.success(), "keygen never overwrites a key");

    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = plugins.join("libmall.so");
    std::fs::copy(library("mall"), &file).unwrap();
    chmod(&file, 0o644);
    testkit::folders::install_tables("mall", &plugins).unwrap();
    // The prod profile, with the key where this test keeps it.
    let keys = format!("[{:?}]", public.display().to_string());
    let check = |file: &Path| {
        let output = Command::new(binary())
            .args(["check", "--config-dir", CONFIG_DIR, "--profile", "prod"])
            .arg(file)
            .env("GAME_HOST_TRUST_PUBLIC_KEYS", &keys)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.code(), stdout)
    };

    let (code, stdout) = check(&file);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with("refused: ") && stdout.contains("is not signed"),
        "{stdout}"
    );

    sign(&key, &file);
    let (code, stdout) = check(&file);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("signed by: {}", public.display())),
        "{stdout}"
    );

    // A changed byte after signing.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(0);
    std::fs::write(&file, bytes).unwrap();
    let (code, stdout) = check(&file);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("is not a valid signature"), "{stdout}");

    sign(&key, &file);
    chmod(&plugins, 0o777);
    let (code, stdout) = check(&file);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("`chmod o-w {}`", plugins.display())),
        "{stdout}"
    );
    chmod(&plugins, 0o755);
    assert_eq!(check(&file).0, Some(0));

    // A private key others can read is refused by sign.
    chmod(&key, 0o640);
    let (output, _) = run(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        file.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

/// The price of a potion in the mall's list (1101).
async fn potion_price(host: &TestHost, token: &str) -> i64 {
    let goods = host.ok(token, "1101", json!({})).await["goods"].clone();
    goods.as_array().unwrap()[0]["price"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn data_tables_that_other_users_could_change_are_refused_until_fixed() {
    let dirs = Dirs::new();
    dirs.install("mall");
    let host = swap_host(dirs, |config| config.trust.check_permissions = true).await;
    let (_, token) = host.login("shopper").await;
    assert_eq!(potion_price(&host, &token).await, 50);

    // A new price lands in a file every user could write.
    let folder = host.dirs.plugins().join("mall.tables");
    let temp = folder.join(".goods.csv.tmp");
    std::fs::write(
        &temp,
        "id,name,price\npotion,Healing potion,45\nsword,Iron sword,300\nshield,Oak shield,200\n",
    )
    .unwrap();
    chmod(&temp, 0o666);
    std::fs::rename(&temp, folder.join("goods.csv")).unwrap();
    let refusal = host.event_message("refuse").await;
    for part in [
        "mall.tables",
        "goods.csv",
        "writable by every user",
        "chmod o-w",
    ] {
        assert!(refusal.contains(part), "`{part}` missing: {refusal}");
    }
    assert_eq!(
        potion_price(&host, &token).await,
        50,
        "the serving tables go on"
    );

    // Fixed by a chmod alone: tried again, and served.
    chmod(&folder.join("goods.csv"), 0o644);
    let start = Instant::now();
    while potion_price(&host, &token).await != 45 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the fixed tables never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
