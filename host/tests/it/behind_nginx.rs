//! Two real `game-host` binaries on one server database behind real nginx, running the shipped
//! example (`config/deploy/nginx/game-host.conf`): one host is stopped gracefully (SIGTERM) in
//! the middle of a purchase load, as ops do to retire or repair a machine. No request may fail,
//! and no purchase may be lost or applied twice. Once on PostgreSQL, once on MariaDB.

use crate::databases::{databases_required, report_skipped, ScratchDb};
use crate::harness::{Dirs, CONFIG_DIR};
use crate::served::{
    assert_each_purchase_applied_once, buyers, serve_command, start, Load, Served,
};
use serde_json::json;
use std::path::Path;
use testkit::nginx::{self, Nginx};

tests_on!(
    [postgres: Postgres, mysql: MySql]
    stopping_a_host_behind_nginx_fails_no_request_and_applies_no_purchase_twice,
);

/// Players buying at once, each on its own connections to nginx.
const BUYERS: usize = 12;

/// `game-host serve` with the demo modules on `db`, named `host_id`.
fn host_on(db: &ScratchDb, dirs: &Dirs, host_id: &str) -> Served {
    let mut command = serve_command(dirs);
    // The URL goes by the environment, as ops would set it, not on the command line.
    command
        .env("GAME_HOST_DATABASE_URL", &db.url)
        .env("GAME_HOST_SERVER_HOST_ID", host_id);
    start(command)
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
    let front = Nginx::start(&nginx_binary, Path::new(CONFIG_DIR), &[a.addr, b.addr], 2)
        .unwrap_or_else(|e| panic!("nginx: {e:#}"));
    let front_address = front.addr;
    let client = reqwest::Client::new();

    // Buyers log in through nginx, and an operator grants them gold on host B.
    let (tokens, players) = buyers(&client, front_address, |path| b.admin_url(path), BUYERS).await;

    let buy = json!({ "cmd": "1103", "data": { "id": "potion", "count": 1 } });
    let load = Load::run(front_address, tokens.clone(), buy);
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

    assert_each_purchase_applied_once(&client, front_address, &tokens, &players, &report.ok).await;

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
