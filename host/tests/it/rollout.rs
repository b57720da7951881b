//! Shipping a module to a fleet (`plugins.source = "database"`): `game-host publish` (the real
//! binary) stores a library in the shared database, and every host that follows it loads it
//! through its one load path. Three in-process hosts share a scratch database on PostgreSQL,
//! then on MariaDB; on SQLite, one host is a fleet of one.

use crate::databases::{Backend, ScratchDb};
use crate::harness::{binary, library, Dirs, TestHost, CONFIG_DIR, DEMO_MODULES};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_published_module_reaches_every_host_under_load_without_a_failed_request,
    publishing_what_every_host_serves_changes_nothing_and_is_audited,
    a_fleet_rollback_returns_every_host_to_the_previous_release,
    a_canary_serves_its_share_of_players_the_same_on_every_host_until_promoted,
    a_failing_canary_is_rolled_back_by_the_fleet_with_bounded_failures,
    the_admin_api_publishes_as_the_command_line_does,
);

/// PostgreSQL notifies the hosts of a change (`LISTEN`/`NOTIFY`): they do not wait for a poll.
mod notified {
    use super::*;

    tests_on!(
        [postgres: Postgres]
        postgres_wakes_every_host_at_once_without_waiting_for_its_poll,
    );
}

/// The cases that need several hosts on one database.
mod shared {
    use super::*;

    tests_on!(
        [postgres: Postgres, mysql: MySql]
        a_host_that_was_down_during_a_publish_catches_up_when_it_starts,
        a_host_that_refuses_a_release_reports_why_while_the_others_serve_it,
        the_fleet_view_shows_the_players_online_on_each_host,
    );
}

/// How long a fleet may take to converge in a test (the goal is about a second; a loaded CI
/// machine gets room).
const CONVERGE_WITHIN: Duration = Duration::from_secs(20);

/// A host following the fleet's releases on `db`, with the demo modules cached in its plugins
/// directory (what it serves until it has caught up).
async fn fleet_host(db: &ScratchDb, host_id: &str) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    fleet_host_in(db, host_id, dirs, |_| {}).await
}

async fn fleet_host_in(
    db: &ScratchDb,
    host_id: &str,
    dirs: Dirs,
    tweak: impl FnOnce(&mut host::Config),
) -> TestHost {
    let (url, host_id) = (db.url.clone(), host_id.to_owned());
    TestHost::start_in(dirs, move |config| {
        config.store.url = url;
        config.server.host_id = host_id;
        config.plugins.source = host::config::PluginsSource::Database;
        config.fleet.poll_ms = 50;
        tweak(config);
    })
    .await
}

/// `game-host publish FILE --database-url URL` (the real binary), with `args` after.
fn publish(db: &ScratchDb, file: &Path, args: &[&str]) -> Output {
    fleet_command(db, "publish", file.as_os_str(), args)
}

/// `game-host COMMAND ARG --database-url URL` (the real binary), with `args` after.
fn fleet_command(db: &ScratchDb, command: &str, arg: &std::ffi::OsStr, args: &[&str]) -> Output {
    Command::new(binary())
        .arg(command)
        .arg(arg)
        .args(["--config-dir", CONFIG_DIR, "--database-url", &db.url])
        .args(args)
        .env_remove("GAME_HOST_TRUST_PUBLIC_KEYS")
        .env_remove("GAME_HOST_TRUST_REQUIRE_SIGNATURE")
        .output()
        .expect("game-host runs")
}

fn published(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "publish failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The identity of the version of `module` serving on `host`.
fn serving(host: &TestHost, module: &str) -> Option<String> {
    host.state
        .registry
        .routes()
        .by_name(module)
        .map(|v| v.identity())
}

/// The sha256 of a workspace library: a version without tables is known by it.
fn sha256_of(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
}

/// Waits until every host serves `release` of `module`; how long that took.
async fn converge(hosts: &[&TestHost], module: &str, release: &str) -> Duration {
    let start = Instant::now();
    loop {
        if hosts
            .iter()
            .all(|h| serving(h, module).as_deref() == Some(release))
        {
            return start.elapsed();
        }
        let serves: Vec<_> = hosts.iter().map(|h| serving(h, module)).collect();
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "not every host serves {release} after {CONVERGE_WITHIN:?}: {serves:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`fleet_view`] sorted by host, once every host's state is `states` (a host writes its
/// report just after it loads a release: a moment after it serves it).
async fn fleet_view_once(
    host: &TestHost,
    module: &str,
    states: &[&str],
) -> Vec<(String, String, Value)> {
    let start = Instant::now();
    loop {
        let mut view = fleet_view(host, module).await;
        view.sort_by(|x, y| x.0.cmp(&y.0));
        if view
            .iter()
            .map(|(_, state, _)| state.as_str())
            .eq(states.iter().copied())
        {
            return view;
        }
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "not {states:?}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one module's row of `GET /admin/fleet` says of each host: (host id, state, refusal).
async fn fleet_view(host: &TestHost, module: &str) -> Vec<(String, String, Value)> {
    let (status, fleet) = host.admin(reqwest::Method::GET, "/admin/fleet", None).await;
    assert_eq!(status, 200, "{fleet}");
    let modules = fleet["modules"].as_array().cloned().unwrap_or_default();
    let row = modules
        .iter()
        .find(|m| m["module"] == module)
        .unwrap_or_else(|| panic!("no row for {module}: {fleet}"));
    row["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host_id"].as_str().unwrap().to_owned(),
                h["state"].as_str().unwrap().to_owned(),
                h["refused"].clone(),
            )
        })
        .collect()
}

async fn a_published_module_reaches_every_host_under_load_without_a_failed_request(db: ScratchDb) {
    let count = if db.backend == Backend::Sqlite { 1 } else { 3 };
    let mut hosts = Vec::new();
    for n in 0..count {
        hosts.push(fleet_host(&db, &format!("host-{n}")).await);
    }
    let hosts = Arc::new(hosts);
    let (_, token) = hosts[0].login("shopper").await;
    let price = |hosts: Arc<Vec<TestHost>>, token: String, n: usize| async move {
        let before = hosts[n].ok(&token, "1203", json!({})).await["gold"]
            .as_i64()
            .unwrap();
        let after = hosts[n]
            .ok(&token, "1103", json!({ "id": "potion", "count": 1 }))
            .await["gold"]
            .as_i64()
            .unwrap();
        before - after
    };
    for n in 0..count {
        assert_eq!(price(hosts.clone(), token.clone(), n).await, 50);
    }

    // Players keep playing on every host while the release goes out.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut players = Vec::new();
    for p in 0..6 {
        let (_, token) = hosts[p % count].login(&format!("player-{p}")).await;
        let (hosts, stop) = (hosts.clone(), stop.clone());
        let (served, failed) = (served.clone(), failed.clone());
        players.push(tokio::spawn(async move {
            let mut n = p;
            while !stop.load(Ordering::Relaxed) {
                let cmd = ["1203", "1101"][n % 2];
                let (status, reply) = hosts[n % hosts.len()].logic(&token, cmd, json!({})).await;
                if status == 200 && reply["ret"] == 0 {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed during the rollout: {status} {reply}");
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sale = library("fixture_mall_sale");
    let said = published(&publish(&db, &sale, &["--reason", "the sale"]));
    let release = sha256_of(&sale);
    assert!(
        said.contains(&release) && said.contains("now desired"),
        "{said}"
    );
    let refs: Vec<&TestHost> = hosts.iter().collect();
    let took = converge(&refs, "mall", &release).await;
    eprintln!(
        "{:?}: publish to the last of {count} hosts serving it: {took:?}",
        db.backend
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for player in players {
        player.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(served.load(Ordering::Relaxed) > 0);
    for n in 0..count {
        assert_eq!(
            price(hosts.clone(), token.clone(), n).await,
            25,
            "host {n} sells at the sale price"
        );
    }
    // Every host says so in the fleet view, which any host shows.
    fleet_view_once(&hosts[0], "mall", &vec!["serving"; count]).await;
}

async fn publishing_what_every_host_serves_changes_nothing_and_is_audited(db: ScratchDb) {
    let host = fleet_host(&db, "only").await;
    let player = library("player");
    let before = serving(&host, "player");
    assert_eq!(before.as_deref(), Some(sha256_of(&player).as_str()));
    let said = published(&publish(
        &db,
        &player,
        &["--reason", "pin what runs", "--operator", "ops-anna"],
    ));
    assert!(said.contains("now desired"), "{said}");
    // Published again: already desired, nothing to change.
    let again = published(&publish(&db, &player, &[]));
    assert!(again.contains("unchanged"), "{again}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        serving(&host, "player"),
        before,
        "the same version still serves"
    );
    let (_, events) = host
        .admin(reqwest::Method::GET, "/admin/events", None)
        .await;
    let swaps = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "swap" && e["module"] == "player")
        .count();
    assert_eq!(swaps, 0, "{events}");
    // The publish is in the audit log, with who and why; the repeat wrote no second row.
    let (_, audit) = host.admin(reqwest::Method::GET, "/admin/audit", None).await;
    let publishes: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "publish")
        .collect();
    assert_eq!(publishes.len(), 1, "{audit}");
    assert_eq!(publishes[0]["operator"], "ops-anna");
    assert_eq!(publishes[0]["reason"], "pin what runs");
    assert_eq!(publishes[0]["after"]["module"], "player");

    // A library the host would refuse is not stored at all.
    let refused = publish(&db, &library("fixture_incompatible"), &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not published"), "{stderr}");
    let (_, fleet) = host.admin(reqwest::Method::GET, "/admin/fleet", None).await;
    let modules: Vec<&str> = fleet["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(modules, ["player"], "{fleet}");
}

/// The shipped mall's tables folder, for publishing the shipped library.
fn mall_tables() -> String {
    format!("{}/../plugins/mall/tables", env!("CARGO_MANIFEST_DIR"))
}

async fn a_fleet_rollback_returns_every_host_to_the_previous_release(db: ScratchDb) {
    let count = if db.backend == Backend::Sqlite { 1 } else { 2 };
    let mut hosts = Vec::new();
    for n in 0..count {
        hosts.push(fleet_host(&db, &format!("host-{n}")).await);
    }
    let hosts: Vec<&TestHost> = hosts.iter().collect();
    let shipped = serving(hosts[0], "mall").unwrap();
    let said = published(&publish(
        &db,
        &library("mall"),
        &["--tables", &mall_tables()],
    ));
    assert!(
        said.contains(&shipped),
        "the shipped build is what serves: {said}"
    );
    let sale = library("fixture_mall_sale");
    published(&publish(&db, &sale, &[]));
    converge(&hosts, "mall", &sha256_of(&sale)).await;

    // On the command line.
    let rollback = |args: &[&str]| fleet_command(&db, "rollback", "mall".as_ref(), args);
    let rolled = rollback(&["--reason", "sale ended early", "--operator", "ops-ben"]);
    let said = String::from_utf8_lossy(&rolled.stdout).into_owned();
    assert!(rolled.status.success(), "{said}{rolled:?}");
    assert!(said.contains(&shipped), "{said}");
    converge(&hosts, "mall", &shipped).await;
    let again = rollback(&[]);
    assert!(!again.status.success(), "nothing left to roll back to");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no previous release"),
        "{again:?}"
    );

    // Through the admin API of any host, after the sale is published again.
    published(&publish(&db, &sale, &[]));
    converge(&hosts, "mall", &sha256_of(&sale)).await;
    let (_, refused) = hosts[0]
        .admin(reqwest::Method::POST, "/admin/modules/mall/rollback", None)
        .await;
    assert_eq!(refused["ret"], 1, "{refused}");
    assert!(
        refused["msg"]
            .as_str()
            .unwrap()
            .contains("/admin/fleet/mall/rollback"),
        "{refused}"
    );
    let (status, rolled) = hosts[count - 1]
        .admin_post(
            "/admin/fleet/mall/rollback",
            json!({ "operator": "ops-cat", "reason": "players complained" }),
        )
        .await;
    assert_eq!((status, rolled["ret"].as_i64()), (200, Some(0)), "{rolled}");
    assert_eq!(rolled["desired"], shipped.as_str());
    converge(&hosts, "mall", &shipped).await;
    let (_, audit) = hosts[0]
        .admin(reqwest::Method::GET, "/admin/audit", None)
        .await;
    let rollbacks: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rollback")
        .map(|e| {
            (
                e["operator"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rollbacks,
        [
            ("ops-cat", "players complained"),
            ("ops-ben", "sale ended early")
        ],
        "{audit}"
    );
}

async fn a_host_that_was_down_during_a_publish_catches_up_when_it_starts(db: ScratchDb) {
    let a = fleet_host(&db, "a").await;
    for module in DEMO_MODULES {
        let tables = format!("{}/../plugins/{module}/tables", env!("CARGO_MANIFEST_DIR"));
        let mut args = vec![];
        if Path::new(&tables).is_dir() {
            args = vec!["--tables", tables.as_str()];
        }
        published(&publish(&db, &library(module), &args));
    }
    let sale = library("fixture_mall_sale");
    published(&publish(&db, &sale, &[]));
    converge(&[&a], "mall", &sha256_of(&sale)).await;
    // B starts after the publishes with an empty plugins directory: everything it serves
    // comes from the database, before it serves its first request.
    let b = fleet_host_in(&db, "b", Dirs::new(), |_| {}).await;
    assert_eq!(serving(&b, "mall"), Some(sha256_of(&sale)));
    for module in DEMO_MODULES {
        assert!(serving(&b, module).is_some(), "{module} serves on b");
    }
    let (_, token) = b.login("late").await;
    let gold = b.ok(&token, "1203", json!({})).await["gold"]
        .as_i64()
        .unwrap();
    let bought = b
        .ok(&token, "1103", json!({ "id": "potion", "count": 1 }))
        .await;
    assert_eq!(gold - bought["gold"].as_i64().unwrap(), 25, "{bought}");
    let view = fleet_view_once(&a, "mall", &["serving", "serving"]).await;
    let hosts: Vec<&str> = view.iter().map(|(host, _, _)| host.as_str()).collect();
    assert_eq!(hosts, ["a", "b"]);
}

async fn a_host_that_refuses_a_release_reports_why_while_the_others_serve_it(db: ScratchDb) {
    // Host C trusts only libraries signed by its key: its demo modules are signed, the sale
    // build published below is not.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("ops.key");
    let made = Command::new(binary())
        .args(["keygen", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        let installed = dirs.install(module);
        let signed = Command::new(binary())
            .args(["sign", "--key"])
            .arg(&key)
            .arg(&installed)
            .output()
            .unwrap();
        assert!(signed.status.success(), "{signed:?}");
    }
    let public = keys.path().join("ops.pub").display().to_string();
    let a = fleet_host(&db, "a").await;
    let b = fleet_host(&db, "b").await;
    let c = fleet_host_in(&db, "c", dirs, |config| {
        config.trust.require_signature = true;
        config.trust.public_keys = vec![public];
    })
    .await;
    let shipped = serving(&c, "mall");
    assert!(shipped.is_some());
    let sale = library("fixture_mall_sale");
    published(&publish(&db, &sale, &[]));
    let release = sha256_of(&sale);
    converge(&[&a, &b], "mall", &release).await;
    // C keeps what it served, and says why in the fleet view, which every host shows.
    let view = fleet_view_once(&b, "mall", &["serving", "serving", "refused"]).await;
    let reason = view[2].2.as_str().unwrap_or_default();
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(serving(&c, "mall"), shipped, "C serves what it served");
    let (_, token) = c.login("on-c").await;
    let gold = c.ok(&token, "1203", json!({})).await["gold"]
        .as_i64()
        .unwrap();
    let bought = c
        .ok(&token, "1103", json!({ "id": "potion", "count": 1 }))
        .await;
    assert_eq!(gold - bought["gold"].as_i64().unwrap(), 50, "{bought}");
}

/// The hosts of a test: three on a server database, one on SQLite.
async fn fleet_of(db: &ScratchDb, tweak: impl Fn(&mut host::Config) + Clone) -> Vec<TestHost> {
    let count = if db.backend == Backend::Sqlite { 1 } else { 3 };
    let mut hosts = Vec::new();
    for n in 0..count {
        let dirs = Dirs::new();
        for module in DEMO_MODULES.iter().chain(&["fixture_swap_a"]) {
            dirs.install(module);
        }
        hosts.push(fleet_host_in(db, &format!("host-{n}"), dirs, tweak.clone()).await);
    }
    hosts
}

/// The identity of `module`'s canary on `host`, and its share.
fn canary(host: &TestHost, module: &str) -> Option<(String, u8)> {
    let routes = host.state.registry.routes();
    routes
        .canary(module)
        .map(|c| (c.version.identity(), c.percent))
}

/// Waits until every host has `wanted` as `module`'s canary.
async fn canary_everywhere(hosts: &[TestHost], module: &str, wanted: Option<(String, u8)>) {
    let start = Instant::now();
    while hosts.iter().any(|h| canary(h, module) != wanted) {
        let now: Vec<_> = hosts.iter().map(|h| canary(h, module)).collect();
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "canaries {now:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_canary_serves_its_share_of_players_the_same_on_every_host_until_promoted(db: ScratchDb) {
    let hosts = fleet_of(&db, |_| {}).await;
    let refs: Vec<&TestHost> = hosts.iter().collect();
    let shipped = serving(&hosts[0], "mall").unwrap();
    published(&publish(
        &db,
        &library("mall"),
        &["--tables", &mall_tables()],
    ));
    let sale = library("fixture_mall_sale");
    let said = published(&publish(&db, &sale, &["--canary", "30"]));
    assert!(said.contains("30% of players"), "{said}");
    let release = sha256_of(&sale);
    canary_everywhere(&hosts, "mall", Some((release.clone(), 30))).await;
    assert_eq!(
        serving(&hosts[0], "mall"),
        Some(shipped.clone()),
        "the rest stay"
    );

    // 1,000 players: each is routed to the same version on every host, 30 ± 5 % to the canary.
    let mut players = Vec::new();
    for n in 0..1000 {
        players.push(hosts[n % hosts.len()].login(&format!("canary-{n}")).await);
    }
    let mut on_canary = 0;
    for (player_id, _) in &players {
        let routed: Vec<String> = hosts
            .iter()
            .map(|h| {
                let (version, _) = h
                    .state
                    .registry
                    .route_with_migrator("11", player_id)
                    .unwrap();
                version.identity()
            })
            .collect();
        assert!(
            routed.iter().all(|r| *r == routed[0]),
            "{player_id}: {routed:?}"
        );
        if routed[0] == release {
            on_canary += 1;
        }
    }
    assert!(
        (250..=350).contains(&on_canary),
        "{on_canary} of 1000 on the canary"
    );
    // What players see over HTTP is the version they are routed to: the canary's sale price.
    for (n, (player_id, token)) in players.iter().take(30).enumerate() {
        let host = &hosts[n % hosts.len()];
        let (version, _) = host
            .state
            .registry
            .route_with_migrator("11", player_id)
            .unwrap();
        let gold = host.ok(token, "1203", json!({})).await["gold"]
            .as_i64()
            .unwrap();
        let after = host
            .ok(token, "1103", json!({ "id": "potion", "count": 1 }))
            .await["gold"]
            .as_i64()
            .unwrap();
        let price = if version.identity() == release {
            25
        } else {
            50
        };
        assert_eq!(gold - after, price, "{player_id}");
    }
    // Another module's canary is its own; a second canary of the mall is refused, saying
    // what to do.
    published(&publish(&db, &library("fixture_swap_a"), &[]));
    published(&publish(
        &db,
        &library("fixture_swap_b"),
        &["--canary", "10"],
    ));
    let second = publish(
        &db,
        &library("mall"),
        &["--canary", "10", "--tables", &mall_tables()],
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && stderr.contains("promote it or roll it back"),
        "{stderr}"
    );

    // Promoted: every player of every host on the sale build, no canary left.
    let promoted = fleet_command(&db, "promote", "mall".as_ref(), &["--reason", "sale works"]);
    assert!(promoted.status.success(), "{promoted:?}");
    converge(&refs, "mall", &release).await;
    canary_everywhere(&hosts, "mall", None).await;
    let (_, token) = &players[0];
    let gold = hosts[0].ok(token, "1203", json!({})).await["gold"]
        .as_i64()
        .unwrap();
    let after = hosts[0]
        .ok(token, "1103", json!({ "id": "potion", "count": 1 }))
        .await["gold"]
        .as_i64()
        .unwrap();
    assert_eq!(gold - after, 25);
    fleet_view_once(&hosts[0], "mall", &vec!["serving"; hosts.len()]).await;
}

async fn a_failing_canary_is_rolled_back_by_the_fleet_with_bounded_failures(db: ScratchDb) {
    let hosts = fleet_of(&db, |config| {
        config.fleet.rollback_min_calls = 20;
    })
    .await;
    let stable = library("fixture_swap_a");
    published(&publish(&db, &stable, &[]));
    // Build b panics on 9505: as a canary for half the players.
    let broken = library("fixture_swap_b");
    published(&publish(&db, &broken, &["--canary", "50"]));
    canary_everywhere(&hosts, "swap", Some((sha256_of(&broken), 50))).await;
    let cached = hosts[0].dirs.plugins().join("canary/libswap.so");
    assert!(cached.is_file(), "the canary is cached for a restart");

    // Players call 9505 on every host, about 300 calls a second in all, until the canary is
    // gone and a second more.
    let hosts = Arc::new(hosts);
    let mut tokens = Vec::new();
    for n in 0..12 {
        tokens.push(hosts[n % hosts.len()].login(&format!("fragile-{n}")).await);
    }
    let start = Instant::now();
    let (failed, failed_late, served) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let gone = Arc::new(AtomicBool::new(false));
    let mut players = Vec::new();
    for (n, (player_id, token)) in tokens.into_iter().enumerate() {
        let (hosts, gone) = (hosts.clone(), gone.clone());
        let (failed, failed_late, served) = (failed.clone(), failed_late.clone(), served.clone());
        players.push(tokio::spawn(async move {
            let mut round = n;
            let mut done_at: Option<Instant> = None;
            while done_at.is_none_or(|at| at.elapsed() < Duration::from_secs(1)) {
                if done_at.is_none() && gone.load(Ordering::Relaxed) {
                    done_at = Some(Instant::now());
                }
                let host = &hosts[round % hosts.len()];
                let (_, reply) = host.logic(&token, "9505", json!({})).await;
                match reply["ret"].as_i64() {
                    Some(0) => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(-5) if done_at.is_some() => {
                        failed_late.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(-5) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("{player_id}: {other:?} {reply}"),
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    while hosts.iter().any(|h| canary(h, "swap").is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the failing canary is still there after 30 s: {} failures",
            failed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gone.store(true, Ordering::Relaxed);
    let took = start.elapsed();
    // Its files leave the cache with it (a moment after it stops serving).
    while cached.exists() {
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "{} stays",
            cached.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for player in players {
        player.await.unwrap();
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "{:?}: a failing canary rolled back after {took:?} and {failed} failed calls",
        db.backend
    );
    // Judged every second on reports written every second, it goes within a few seconds of
    // its 20th call: at ~150 canary calls a second, well under a thousand failures.
    assert!(
        failed >= 20,
        "judged only after rollback_min_calls: {failed}"
    );
    assert!(failed < 1000, "{failed} failed calls");
    assert_eq!(
        failed_late.load(Ordering::Relaxed),
        0,
        "none once it is gone"
    );
    assert!(served.load(Ordering::Relaxed) > 0);
    // The fleet says so: the desired row has no canary, and the audit log names the release,
    // the figures and who decided.
    let (_, fleet) = hosts[0]
        .admin(reqwest::Method::GET, "/admin/fleet", None)
        .await;
    let swap = fleet["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "swap")
        .cloned()
        .unwrap();
    assert_eq!(swap["canary"], Value::Null, "{swap}");
    assert_eq!(swap["desired"], sha256_of(&stable).as_str());
    let (_, audit) = hosts[0]
        .admin(reqwest::Method::GET, "/admin/audit", None)
        .await;
    let automatic: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operator"] == "automatic")
        .collect();
    assert_eq!(
        automatic.len(),
        1,
        "one rollback, whichever host decided: {audit}"
    );
    assert_eq!(automatic[0]["action"], "rollback");
    // Counted in every host's metrics, read from the audit log.
    let metrics = hosts[hosts.len() - 1].metrics().await;
    let counted = |action: &str, by: &str| {
        metrics.lines().any(|line| {
            line.starts_with("game_host_fleet_changes{")
                && line.contains(&format!("action=\"{action}\""))
                && line.contains(&format!("by=\"{by}\""))
                && line.ends_with(" 1")
        })
    };
    assert!(counted("rollback", "automatic"), "{metrics}");
    assert!(counted("canary", "operator"), "{metrics}");
    let reason = automatic[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&sha256_of(&broken))
            && reason.contains("calls")
            && reason.contains("host-"),
        "{reason}"
    );
}

async fn the_admin_api_publishes_as_the_command_line_does(db: ScratchDb) {
    use base64::Engine;
    let hosts = fleet_of(&db, |_| {}).await;
    let encode = |file: &Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(file).unwrap())
    };
    let stable = library("fixture_swap_a");
    let (status, reply) = hosts[0]
        .admin_post(
            "/admin/fleet/publish",
            json!({ "operator": "ops-eve", "reason": "first release", "library": encode(&stable) }),
        )
        .await;
    assert_eq!((status, reply["ret"].as_i64()), (200, Some(0)), "{reply}");
    assert!(
        reply["msg"].as_str().unwrap().contains("now desired"),
        "{reply}"
    );
    let canary = library("fixture_swap_b");
    let (_, reply) = hosts[hosts.len() - 1]
        .admin_post(
            "/admin/fleet/publish",
            json!({
                "operator": "ops-eve",
                "reason": "try b",
                "library": encode(&canary),
                "canary": 20,
            }),
        )
        .await;
    assert_eq!(reply["ret"], 0, "{reply}");
    assert!(
        reply["msg"].as_str().unwrap().contains("20% of players"),
        "{reply}"
    );
    canary_everywhere(&hosts, "swap", Some((sha256_of(&canary), 20))).await;

    // What the command line refuses, the API refuses, in the same words.
    let (_, refused) = hosts[0]
        .admin_post(
            "/admin/fleet/publish",
            json!({ "operator": "ops-eve", "reason": "oops", "library": "bm90IGEgbGlicmFyeQ==" }),
        )
        .await;
    assert_eq!(refused["ret"], 1, "{refused}");
    let msg = refused["msg"].as_str().unwrap();
    assert!(msg.contains("the library: not published"), "{msg}");
    let (status, bad) = hosts[0]
        .admin_post(
            "/admin/fleet/publish",
            json!({ "operator": "ops-eve", "reason": "oops", "library": "not base64!" }),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["msg"].as_str().unwrap().contains("base64"), "{bad}");
    let (_, audit) = hosts[0]
        .admin(reqwest::Method::GET, "/admin/audit", None)
        .await;
    let by_eve: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operator"] == "ops-eve")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_eve, ["canary", "publish"], "{audit}");
}

async fn postgres_wakes_every_host_at_once_without_waiting_for_its_poll(db: ScratchDb) {
    // A poll every 30 s: a host that waited for it would be far behind.
    let hosts = fleet_of(&db, |config| config.fleet.poll_ms = 30_000).await;
    let refs: Vec<&TestHost> = hosts.iter().collect();
    // Once every host has caught up at start (its first poll), nothing but a notice wakes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sale = library("fixture_mall_sale");
    published(&publish(&db, &sale, &[]));
    let took = converge(&refs, "mall", &sha256_of(&sale)).await;
    assert!(
        took < Duration::from_secs(10),
        "{took:?}: the hosts waited for their poll"
    );
}

async fn the_fleet_view_shows_the_players_online_on_each_host(db: ScratchDb) {
    let every_second = |config: &mut host::Config| config.fleet.heartbeat_secs = 1;
    let dirs = || {
        let dirs = Dirs::new();
        for module in DEMO_MODULES {
            dirs.install(module);
        }
        dirs
    };
    let a = fleet_host_in(&db, "a", dirs(), every_second).await;
    let b = fleet_host_in(&db, "b", dirs(), every_second).await;
    let (_, token) = b.login("online-on-b").await;
    let (_socket, welcome) = crate::ws::open_as(&b, &token).await;
    assert_eq!(welcome["ret"], 0);
    // Each host reports every heartbeat; any host's view shows them all.
    let start = Instant::now();
    loop {
        let (_, fleet) = a.admin(reqwest::Method::GET, "/admin/fleet", None).await;
        let online: Vec<(String, i64)> = fleet["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .map(|h| {
                (
                    h["host_id"].as_str().unwrap().to_owned(),
                    h["players_online"].as_i64().unwrap(),
                )
            })
            .collect();
        if online == [("a".to_owned(), 0), ("b".to_owned(), 1)] {
            break;
        }
        assert!(start.elapsed() < CONVERGE_WITHIN, "{online:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
