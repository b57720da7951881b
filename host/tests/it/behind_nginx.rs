//! Two real `game-host` binaries on one server database behind real nginx, running the shipped
//! example (`config/deploy/nginx/game-host.conf`): one host is stopped gracefully (SIGTERM) in
//! the middle of a purchase load, as ops do to retire or repair a machine. No request may fail,
//! and no purchase may be lost or applied twice. Once on PostgreSQL, once on MariaDB.

use crate::databases::{databases_required, report_skipped, ScratchDb};
use crate::harness::{send, Dirs, CONFIG_DIR};
use crate::served::{login, serve_command, state_of, Load, Served};
use serde_json::{json, Value};
use std::path::Path;
use testkit::nginx::{self, Nginx};

tests_on!(
    [postgres: Postgres, mysql: MySql]
    stopping_a_host_behind_nginx_fails_no_request_and_applies_no_purchase_twice,
);

/// Players buying at once, each on its own connections to nginx.
const BUYERS: usize = 12;
/// Gold granted to each buyer first: more than the load can spend, so that every purchase
/// sells (a refusal for want of gold would hide a purchase applied twice).
const GOLD: i64 = 10_000_000;
/// What one purchase costs (the shipped mall's potion).
const POTION: i64 = 50;

/// `game-host serve` with the demo modules on `db`, named `host_id`.
fn host_on(db: &ScratchDb, dirs: &Dirs, host_id: &str) -> Served {
    let mut command = serve_command(dirs);
    // The URL goes by the environment, as ops would set it, not on the command line.
    command
        .env("GAME_HOST_DATABASE_URL", &db.url)
        .env("GAME_HOST_SERVER_HOST_ID", host_id);
    Served::start(command)
}

async fn stopping_a_host_behind_nginx_fails_no_request_and_applies_no_purchase_twice(
    db: ScratchDb,
) {
    let Some(nginx_binary) = nginx::find() else {
        assert!(!databases_required(), "{}", nginx::MISSING);
        return report_skipped("nginx", nginx::MISSING);
    };
    let dirs = [Dirs::new(), Dirs::new()];
    let a = host_on(&db, &dirs[0], "a");
    let b = host_on(&db, &dirs[1], "b");
    let addresses = [&a.address, &b.address].map(|address| address.parse().unwrap());
    let front = Nginx::start(&nginx_binary, Path::new(CONFIG_DIR), &addresses, 2)
        .unwrap_or_else(|e| panic!("nginx: {e:#}"));
    let front_address = front.addr.to_string();
    let client = reqwest::Client::new();

    // Buyers log in through nginx, and an operator grants them gold on host B.
    let mut tokens = Vec::new();
    let mut players = Vec::new();
    for n in 0..BUYERS {
        let url = format!("http://{front_address}/login");
        let token = login(&client, &url, &format!("buyer{n}")).await;
        let start = state_of(&client, &front_address, &token).await;
        let player_id = start["player_id"].as_str().unwrap().to_owned();
        let grant = client
            .post(b.admin_url(&format!("/admin/players/{player_id}/grant")))
            .json(&json!({ "operator": "test", "reason": "load", "gold": GOLD }));
        let (status, granted) = send(grant).await;
        assert_eq!(status, 200, "{granted}");
        let start = state_of(&client, &front_address, &token).await;
        players.push(start);
        tokens.push(token);
    }

    let buy = json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } });
    let load = Load::run(&front_address, tokens.clone(), buy);
    load.serves(300).await;
    // Host A is stopped as systemd would: SIGTERM, then wait for it to exit.
    a.signal("-TERM");
    let exit = tokio::task::block_in_place(|| a.wait());
    assert_eq!(exit, Some(0), "host A stops cleanly");
    // Host B alone serves from here.
    load.serves(300).await;
    let report = load.finish().await;
    assert!(
        report.errors.is_empty(),
        "{} of {} purchases failed: {:#?}\nnginx: {}",
        report.errors.len(),
        report.total_ok() + report.errors.len() as u64,
        report.errors,
        front.logs()
    );

    // Every acknowledged purchase is in the data exactly once: for each buyer, the gold spent
    // and the potions held are what the `ret: 0` replies say.
    for ((token, start), bought) in tokens.iter().zip(&players).zip(&report.ok) {
        let end = state_of(&client, &front_address, token).await;
        let bought = *bought as i64;
        let potions = |state: &Value| state["items"]["potion"].as_i64().unwrap_or(0);
        assert_eq!(
            end["gold"].as_i64().unwrap(),
            start["gold"].as_i64().unwrap() - POTION * bought,
            "gold after {bought} purchases: {start} -> {end}"
        );
        assert_eq!(
            potions(&end),
            potions(start) + bought,
            "potions after {bought} purchases: {start} -> {end}"
        );
    }

    // The test did what it says: host A served purchases before its stop, and finished some
    // on its open connections after it had stopped accepting.
    let log = std::fs::read_to_string(dirs[0].log().join("game/info.log")).unwrap();
    let (before, during) = log
        .split_once("shutting down: no longer accepting")
        .expect("host A logged its shutdown");
    let purchases = |part: &str| {
        part.lines()
            .filter(|l| l.contains("] request method=POST path=/logic "))
            .count()
    };
    assert!(purchases(before) > 0, "host A served no purchase");
    assert!(
        purchases(during) > 0,
        "host A served no purchase while stopping: the stop came between requests"
    );
}
