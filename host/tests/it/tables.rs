//! Designer data tables: module `prices` (fixture `prices`) reads its catalogue from
//! `prices.tables/goods.csv`. A designer changes a price while a player asks for it without
//! pause: no request fails, no library is rebuilt, and once the new price answers the old one
//! never does again. A bad row is refused, naming the file, the line and the reason, while the
//! tables that serve go on; a rollback returns to the previous tables. On SQLite, PostgreSQL
//! and MariaDB.

use crate::databases::ScratchDb;
use crate::harness::{binary, library, Dirs, TestHost, CONFIG_DIR};
use hyper::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_price_changes_under_load_with_no_failed_request_and_no_rebuild,
    a_bad_row_is_refused_by_file_line_and_reason_and_the_serving_tables_go_on,
    a_command_running_when_its_tables_change_finishes_on_them,
);

/// Writes `prices.tables/goods.csv` the way a designer's export lands: a hidden file in the
/// folder, then a rename over the table.
fn write_goods(plugins: &Path, csv: &str) {
    let folder = plugins.join("prices.tables");
    std::fs::create_dir_all(&folder).unwrap();
    let temp = folder.join(".goods.csv.partial");
    std::fs::write(&temp, csv).unwrap();
    std::fs::rename(&temp, folder.join("goods.csv")).unwrap();
}

async fn host_on(db: &ScratchDb, sword: i64) -> Arc<TestHost> {
    let dirs = Dirs::new();
    std::fs::copy(
        library("fixture_prices"),
        dirs.plugins().join("libprices.so"),
    )
    .unwrap();
    write_goods(
        &dirs.plugins(),
        &format!("id,price\nsword,{sword}\nshield,7\n"),
    );
    let url = db.url.clone();
    Arc::new(
        TestHost::start_in(dirs, move |config| {
            config.store.url = url;
            config.plugins.debounce_ms = 50;
        })
        .await,
    )
}

/// The module `prices` as `/admin/modules` shows it.
async fn prices(host: &TestHost) -> Value {
    let (_, modules) = host.admin(Method::GET, "/admin/modules", None).await;
    modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "prices")
        .cloned()
        .unwrap_or(Value::Null)
}

async fn quote(host: &TestHost, token: &str) -> i64 {
    host.ok(token, "9301", json!({ "id": "sword" })).await["price"]
        .as_i64()
        .unwrap()
}

async fn wait_for_price(host: &TestHost, token: &str, price: i64) {
    let start = Instant::now();
    while quote(host, token).await != price {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the price never became {price}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_price_changes_under_load_with_no_failed_request_and_no_rebuild(db: ScratchDb) {
    let host = host_on(&db, 10).await;
    let (_, token) = host.login("shopper").await;
    assert_eq!(quote(&host, &token).await, 10);
    let before = prices(&host).await;
    assert_eq!(before["tables"]["files"], json!(["goods.csv"]), "{before}");

    // A player asks for the price without pause while the designer changes it.
    let (stop, asked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let load = tokio::spawn({
        let (host, token, stop, asked) = (host.clone(), token.clone(), stop.clone(), asked.clone());
        async move {
            let mut new_seen = false;
            while !stop.load(Ordering::Relaxed) || !new_seen {
                let price = quote(&host, &token).await; // fails the test unless ret 0
                asked.fetch_add(1, Ordering::Relaxed);
                match price {
                    12 => new_seen = true,
                    10 => assert!(!new_seen, "the old price answered after the new one"),
                    other => panic!("price {other}"),
                }
            }
        }
    });
    while asked.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    write_goods(&host.dirs.plugins(), "id,price\nsword,12\nshield,7\n");
    wait_for_price(&host, &token, 12).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the load ends")
        .expect("no request failed");

    let after = prices(&host).await;
    assert_ne!(after["tables"]["sha256"], before["tables"]["sha256"]);
    assert_eq!(after["sha256"], before["sha256"], "the same library");
    assert_eq!(
        host.ok(&token, "9303", json!({ "id": "sword" })).await["gold"],
        1000 - 12
    );
    let swap = host.newest_event("swap").await.expect("a swap event");
    assert_eq!(swap["module"], "prices");

    // A rollback serves the previous tables again, whatever the folder holds now.
    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/prices/rollback", None)
        .await;
    assert_eq!(rolled["ret"], 0, "{rolled}");
    assert_eq!(quote(&host, &token).await, 10);
    assert_eq!(
        prices(&host).await["tables"]["sha256"],
        before["tables"]["sha256"]
    );
    // An operator's reload takes the folder as it is.
    let (_, reloaded) = host
        .admin(Method::POST, "/admin/modules/prices/reload", None)
        .await;
    assert_eq!(reloaded["change"], "swapped", "{reloaded}");
    assert_eq!(quote(&host, &token).await, 12);
}

async fn a_bad_row_is_refused_by_file_line_and_reason_and_the_serving_tables_go_on(db: ScratchDb) {
    let host = host_on(&db, 10).await;
    let (_, token) = host.login("shopper").await;
    write_goods(
        &host.dirs.plugins(),
        "id,price\nsword,11\nshield,7\naxe,-3\n",
    );
    let msg = host.event_message("refuse").await;
    for part in [
        "prices.tables/goods.csv, line 4",
        "the price of `axe` must be above 0",
        "what serves stays",
    ] {
        assert!(msg.contains(part), "`{part}` missing: {msg}");
    }
    assert_eq!(quote(&host, &token).await, 10, "the serving tables go on");

    // Fixed: swapped in without touching the library.
    write_goods(
        &host.dirs.plugins(),
        "id,price\nsword,11\nshield,7\naxe,3\n",
    );
    wait_for_price(&host, &token, 11).await;
    assert_eq!(
        host.ok(&token, "9301", json!({ "id": "axe" })).await["price"],
        3
    );
}

#[test]
fn check_reads_the_tables_beside_the_library() {
    let dirs = Dirs::new();
    let file = dirs.plugins().join("libprices.so");
    std::fs::copy(library("fixture_prices"), &file).unwrap();
    let check = || {
        let output = std::process::Command::new(binary())
            .args(["check", "--config-dir", CONFIG_DIR])
            .arg(&file)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, stdout) = check();
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("prices.tables/goods.csv: missing"),
        "{stdout}"
    );
    write_goods(&dirs.plugins(), "id,price\nsword,10\n");
    let (ok, stdout) = check();
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("data tables: goods.csv (prices.tables, sha256 "),
        "{stdout}"
    );
}

/// The price of `id` in the mall's list (1101).
async fn mall_price(host: &TestHost, token: &str, id: &str) -> i64 {
    let goods = host.ok(token, "1101", json!({})).await["goods"].clone();
    goods
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .and_then(|g| g["price"].as_i64())
        .unwrap_or_else(|| panic!("no {id} in {goods}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rollback_a_table_edit_keeps_the_library_rolled_back_to() {
    let dirs = Dirs::new();
    dirs.install("mall"); // with its tables: a potion at 50
    let host = TestHost::start_in(dirs, |config| config.plugins.debounce_ms = 50).await;
    let (_, token) = host.login("shopper").await;
    assert_eq!(mall_price(&host, &token, "potion").await, 50);
    // A later build (everything at half price, no tables) lands, and is rolled back.
    let sale = host.dirs.plugins().join(".libmall.so.tmp");
    std::fs::copy(library("fixture_mall_sale"), &sale).unwrap();
    std::fs::rename(&sale, host.dirs.plugins().join("libmall.so")).unwrap();
    let start = Instant::now();
    while mall_price(&host, &token, "potion").await != 25 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the sale never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/mall/rollback", None)
        .await;
    assert_eq!(rolled["ret"], 0, "{rolled}");
    assert_eq!(mall_price(&host, &token, "potion").await, 50);

    // A designer changes a price: the library rolled back to serves it, not the sale.
    let folder = host.dirs.plugins().join("mall.tables");
    std::fs::write(
        folder.join(".goods.csv.tmp"),
        "id,name,price\npotion,Healing potion,45\nsword,Iron sword,300\nshield,Oak shield,200\n",
    )
    .unwrap();
    std::fs::rename(folder.join(".goods.csv.tmp"), folder.join("goods.csv")).unwrap();
    let start = Instant::now();
    loop {
        match mall_price(&host, &token, "potion").await {
            45 => break,
            50 => {}
            other => panic!("potion at {other}: the rolled-back-from build served again"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the new price never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, modules) = host.admin(Method::GET, "/admin/modules", None).await;
    let mall = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mall")
        .cloned()
        .unwrap();
    assert_eq!(mall["version"], "0.1.0", "{mall}");
}

async fn a_command_running_when_its_tables_change_finishes_on_them(db: ScratchDb) {
    let host = host_on(&db, 10).await;
    let (_, token) = host.login("shopper").await;
    let (_, slow_token) = host.login("slow").await;
    let slow = tokio::spawn({
        let (host, token) = (host.clone(), slow_token.clone());
        async move {
            host.ok(&token, "9305", json!({ "id": "sword", "ms": 1500 }))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_goods(&host.dirs.plugins(), "id,price\nsword,12\nshield,7\n");
    wait_for_price(&host, &token, 12).await;
    assert!(
        !slow.is_finished(),
        "the slow command was to straddle the swap"
    );
    // It read the same tables before and after the swap: the ones it started with.
    assert_eq!(
        slow.await.unwrap(),
        json!({ "id": "sword", "before": 10, "after": 10 })
    );
    // Then its version retires and leaves memory, tables and all.
    let start = Instant::now();
    loop {
        if let Some(retired) = host.newest_event("retire").await {
            assert_eq!(retired["module"], "prices", "{retired}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the old version never retired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.newest_event("leak").await, None);
}
