//! The demo's own saved-data schema change, as a game would ship it: module `activity` from
//! release 0.1 (schema 1, `{"last_day", "streak"}`, fixture `activity-1`) to 0.2 (schema 2,
//! the streak as a record and the best run, `plugins/activity`) and back by a rollback, while
//! players sign in without pause. Players signed in under 0.1, under 0.2, and after the
//! rollback, one UTC day each: no request fails, and every streak goes on counting, on
//! SQLite, PostgreSQL and MariaDB.

use crate::databases::ScratchDb;
use crate::harness::{library, Dirs, TestHost};
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    activity_0_1_to_0_2_and_back_under_load_keeps_every_streak,
);

const DAY_MS: i64 = 86_400_000;
/// Players signed in since release 0.1, each kept busy by the load.
const PLAYERS: usize = 12;
/// Tasks sending the load, each looping over its share of the players.
const SENDERS: usize = 4;

/// Installs `crate_name`'s library as the activity module, the way a designer ships it.
fn ship(plugins: &std::path::Path, crate_name: &str) {
    let temp = plugins.join(".libactivity.so.partial");
    std::fs::copy(library(crate_name), &temp).unwrap();
    std::fs::rename(&temp, plugins.join("libactivity.so")).unwrap();
}

/// The schema `activity` serves, and its migrator's, as `/admin/modules` shows them.
async fn schemas(host: &TestHost) -> (Value, Value) {
    let (_, modules) = host.admin(Method::GET, "/admin/modules", None).await;
    let activity = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "activity")
        .cloned()
        .unwrap_or(Value::Null);
    (
        activity["schema"].clone(),
        activity["migrator"]["schema"].clone(),
    )
}

async fn wait_for_schema(host: &TestHost, schema: u32) {
    let start = Instant::now();
    while schemas(host).await.0 != schema {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "schema {schema} never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every streak each player was answered with, in order.
type Streaks = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

/// Players signing in without pause: most calls are refused (already signed in today, ret 1);
/// the first of each day is answered with the streak. Any other answer fails the test.
struct Load {
    stop: Arc<AtomicBool>,
    streaks: Streaks,
    /// How many passes over its players each sender has finished.
    passes: Arc<Vec<AtomicU64>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(host: &Arc<TestHost>, players: &[String], streaks: Streaks) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let passes: Arc<Vec<AtomicU64>> =
            Arc::new((0..SENDERS).map(|_| AtomicU64::new(0)).collect());
        let tasks = (0..SENDERS)
            .map(|sender| {
                let mine: Vec<String> = players
                    .iter()
                    .skip(sender)
                    .step_by(SENDERS)
                    .cloned()
                    .collect();
                let (host, stop, streaks, passes) =
                    (host.clone(), stop.clone(), streaks.clone(), passes.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        for token in &mine {
                            let (status, reply) = host.logic(token, "1001", json!({})).await;
                            match reply["ret"].as_i64() {
                                Some(0) => streaks
                                    .lock()
                                    .unwrap()
                                    .entry(token.clone())
                                    .or_default()
                                    .push(reply["data"]["streak"].as_u64().unwrap()),
                                Some(1) => {}
                                _ => panic!("a sign-in failed: {status} {reply}"),
                            }
                        }
                        passes[sender].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            streaks,
            passes,
            tasks,
        }
    }

    /// Waits until every sender has finished the pass it was in: a sign-in routed to a release
    /// before a swap or a rollback has then been answered. (Such a call ends on the release it
    /// began with, and reads the clock as it runs: a day advanced before it ends would be
    /// signed in by the replaced release.)
    async fn drained(&self) {
        let begun: Vec<u64> = self
            .passes
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect();
        let start = Instant::now();
        while self
            .passes
            .iter()
            .zip(&begun)
            .any(|(pass, begun)| pass.load(Ordering::Relaxed) <= *begun)
        {
            assert!(
                !self.tasks.iter().any(|t| t.is_finished()),
                "a sender stopped"
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "a sender did not finish a pass in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every player has been answered `days` sign-ins.
    async fn until_signed_in(&self, days: usize) {
        let start = Instant::now();
        loop {
            let done = {
                let streaks = self.streaks.lock().unwrap();
                streaks.len() == PLAYERS && streaks.values().all(|s| s.len() >= days)
            };
            if done {
                return;
            }
            assert!(
                !self.tasks.iter().any(|t| t.is_finished()),
                "a sender stopped"
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not every player signed in {days} days: {:?}",
                self.streaks.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("the load ends")
                .expect("no sign-in failed");
        }
    }
}

async fn activity_0_1_to_0_2_and_back_under_load_keeps_every_streak(db: ScratchDb) {
    let dirs = Dirs::new();
    ship(&dirs.plugins(), "fixture_activity_1");
    let url = db.url.clone();
    let host = Arc::new(
        TestHost::start_in(dirs, move |config| {
            config.store.url = url;
            config.plugins.debounce_ms = 50;
        })
        .await,
    );
    let mut players = Vec::new();
    let mut first_id = String::new();
    for n in 0..PLAYERS {
        let (id, token) = host.login(&format!("streaker{n}")).await;
        if n == 0 {
            first_id = id;
        }
        players.push(token);
    }
    let streaks: Streaks = Arc::default();
    let load = Load::start(&host, &players, streaks.clone());

    // Day 1 under release 0.1, then 0.2 lands under the load.
    load.until_signed_in(1).await;
    // Release 0.2 reads its daily reward from a table: the table first, then the library.
    testkit::folders::install_tables("activity", &host.dirs.plugins()).unwrap();
    ship(&host.dirs.plugins(), "activity");
    wait_for_schema(&host, 2).await;
    load.drained().await;

    // Day 2 under 0.2, and a player new under it.
    host.clock.advance_millis(DAY_MS);
    load.until_signed_in(2).await;
    let (_, late) = host.login("late").await;
    assert_eq!(host.ok(&late, "1001", json!({})).await["streak"], 1);

    // Rolled back to 0.1 under the load: 0.2 stays loaded as the migrator.
    let (_, rolled) = host
        .admin(Method::POST, "/admin/modules/activity/rollback", None)
        .await;
    assert_eq!(rolled["ret"], 0, "{rolled}");
    wait_for_schema(&host, 1).await;
    assert_eq!(schemas(&host).await.1, 2, "the migrator is 0.2");
    load.drained().await;

    // Day 3 under 0.1 again: every streak goes on.
    host.clock.advance_millis(DAY_MS);
    load.until_signed_in(3).await;
    assert_eq!(host.ok(&late, "1001", json!({})).await["streak"], 2);
    load.stop().await;

    let answered = streaks.lock().unwrap().clone();
    for (player, answered) in &answered {
        assert_eq!(
            answered,
            &[1, 2, 3],
            "player {player}: one sign-in a day, none lost"
        );
    }
    // Stored by 0.1 again, at schema 1.
    let (_, shown) = host
        .admin(Method::GET, &format!("/admin/players/{first_id}"), None)
        .await;
    let stored = &shown["player"]["modules"]["activity"];
    assert_eq!(
        (&stored["streak"], stored.get("$schema")),
        (&json!(3), None),
        "{stored}"
    );
}
