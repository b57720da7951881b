//! The purchase rules as properties, on the real host with the real demo modules: for any
//! sequence of commands a player sends (sign-ins on any days, purchases valid or not, several
//! purchases at once, profile changes, reads, unknown commands), gold and items are conserved.
//! Starting gold + sign-in rewards − what the purchases cost = the balance, and each item's
//! count is what the purchases bought, counted from the replies and held against the record
//! (its `1203` reply and the store's). Each reply is also checked against PROTOCOL.md's table.
//!
//! Seed-stable: the same cases run every time (set `PROPTEST_CASES` for more). Each case is a
//! new player on one host; the test clock moves only when a case says so.

use crate::harness::{TestHost, DAY_MS};
use futures::future::join_all;
use host::clock::Clock;
use proptest::prelude::*;
use proptest::test_runner::{FailurePersistence, RngSeed, TestCaseResult, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// PROTOCOL.md: a new player's gold, and what a sign-in gives.
const START_GOLD: i64 = 1000;
const SIGN_IN_REWARD: i64 = 100;
/// A session lasts 7 days (`session.ttl_secs`); a case logs in again before then.
const RELOGIN_AFTER_MS: i64 = 6 * DAY_MS;

#[derive(Debug, Clone)]
enum Step {
    /// `1001`.
    SignIn,
    /// The host clock moves on; a new UTC day may begin, or two.
    Wait { hours: i64 },
    /// `1101`.
    Goods,
    /// `1103` with any `id` and `count`, valid or not.
    Buy { good: Good, count: Value },
    /// Several valid `1103` sent at once: a player's commands apply one at a time.
    Burst(Vec<(usize, i64)>),
    /// `1201` with any `name`.
    Profile { name: Value },
    /// `1203`.
    Record,
    /// A command no module serves.
    Unknown(&'static str),
}

/// The `id` a purchase names: the catalogue's n-th good (modulo its size), or something else.
#[derive(Debug, Clone)]
enum Good {
    Sold(usize),
    Other(Value),
}

fn step() -> impl Strategy<Value = Step> {
    let count = prop_oneof![
        6 => (1i64..=5).prop_map(Value::from),
        2 => (6i64..=99).prop_map(Value::from),
        1 => prop_oneof![(-2i64..=0), (100i64..=120)].prop_map(Value::from),
        1 => prop_oneof![Just(json!(2.5)), Just(json!("3")), Just(Value::Null)],
    ];
    let good = prop_oneof![
        6 => (0usize..8).prop_map(Good::Sold),
        1 => prop_oneof![Just(json!("axe")), Just(json!(7)), Just(Value::Null)].prop_map(Good::Other),
    ];
    let name = prop_oneof![
        3 => "[A-Za-z ]{0,36}".prop_map(Value::from),
        1 => prop_oneof![Just(json!(42)), Just(Value::Null)],
    ];
    prop_oneof![
        3 => Just(Step::SignIn),
        2 => (1i64..=36).prop_map(|hours| Step::Wait { hours }),
        1 => Just(Step::Goods),
        6 => (good, count).prop_map(|(good, count)| Step::Buy { good, count }),
        2 => prop::collection::vec((0usize..8, 1i64..=8), 2..8).prop_map(Step::Burst),
        1 => name.prop_map(|name| Step::Profile { name }),
        1 => Just(Step::Record),
        1 => prop_oneof![Just("1002"), Just("1102"), Just("1104"), Just("1202"), Just("1401")]
            .prop_map(Step::Unknown),
    ]
}

/// One catalogue entry, as `1101` gives it.
#[derive(Debug, Clone)]
struct Sold {
    id: String,
    price: i64,
}

/// What the player's record must be, predicted step by step, and the conservation ledger,
/// counted only from what the replies said was done.
#[derive(Debug, Default)]
struct Player {
    gold: i64,
    items: BTreeMap<String, i64>,
    name: String,
    /// The UTC day of the last sign-in, and the streak ending on it.
    signed_in: Option<(i64, i64)>,
    rewards: i64,
    spent: i64,
    bought: BTreeMap<String, i64>,
}

/// One case: a new player plays `steps`.
struct Case<'a> {
    host: &'a TestHost,
    goods: &'a [Sold],
    account: String,
    token: String,
    logged_in_at: i64,
    player: Player,
}

#[test]
fn gold_and_items_are_conserved_for_any_sequence_of_commands() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = runtime.block_on(TestHost::start());
    let goods = runtime.block_on(catalogue(&host));
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config());
    let steps = prop::collection::vec(step(), 1..24);
    let result = runner.run(&steps, |steps| {
        let account = format!("prop-{}", cases.fetch_add(1, Ordering::Relaxed));
        runtime.block_on(async {
            let mut case = Case::start(&host, &goods, account).await;
            for step in &steps {
                case.play(step).await?;
            }
            case.check_ledger().await
        })
    });
    runtime.block_on(host.stop());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn config() -> ProptestConfig {
    let defaults = ProptestConfig::default();
    ProptestConfig {
        cases: std::env::var_os("PROPTEST_CASES").map_or(40, |_| defaults.cases),
        max_shrink_iters: 200,
        rng_seed: RngSeed::Fixed(0x6761_6d65_686f_7374),
        failure_persistence: None::<Box<dyn FailurePersistence>>,
        ..defaults
    }
}

/// The catalogue, as PROTOCOL.md says: at least 3 goods with a string id and integer price.
async fn catalogue(host: &TestHost) -> Vec<Sold> {
    let (_, token) = host.login("prop-catalogue").await;
    let data = host.ok(&token, "1101", json!({})).await;
    let goods: Vec<Sold> = data["goods"]
        .as_array()
        .expect("goods")
        .iter()
        .map(|g| Sold {
            id: g["id"].as_str().expect("id").to_owned(),
            price: g["price"].as_i64().expect("price"),
        })
        .collect();
    assert!(
        goods.len() >= 3 && goods.iter().all(|g| g.price > 0),
        "{data}"
    );
    goods
}

impl<'a> Case<'a> {
    async fn start(host: &'a TestHost, goods: &'a [Sold], account: String) -> Case<'a> {
        let (_, token) = host.login(&account).await;
        Case {
            host,
            goods,
            player: Player {
                gold: START_GOLD,
                name: account.clone(),
                ..Player::default()
            },
            account,
            token,
            logged_in_at: host.clock.now_millis(),
        }
    }

    async fn play(&mut self, step: &Step) -> TestCaseResult {
        match step {
            Step::SignIn => self.sign_in().await,
            Step::Wait { hours } => {
                self.host.clock.advance_millis(hours * 3_600_000);
                if self.host.clock.now_millis() - self.logged_in_at > RELOGIN_AFTER_MS {
                    self.token = self.host.login(&self.account).await.1;
                    self.logged_in_at = self.host.clock.now_millis();
                }
                Ok(())
            }
            Step::Goods => {
                let data = self.command("1101", json!({}), 0).await?;
                prop_assert_eq!(
                    data["goods"].as_array().map(Vec::len),
                    Some(self.goods.len())
                );
                Ok(())
            }
            Step::Buy { good, count } => self.buy(good, count).await,
            Step::Burst(buys) => self.burst(buys).await,
            Step::Profile { name } => self.profile(name).await,
            Step::Record => {
                let data = self.command("1203", json!({}), 0).await?;
                self.check_record(&data)
            }
            Step::Unknown(cmd) => self
                .command(cmd, json!({ "id": "potion", "count": 1 }), -1)
                .await
                .map(drop),
        }
    }

    /// Sends `cmd`; checks the status, `ret` and reply `cmd` PROTOCOL.md gives; returns `data`.
    async fn command(&self, cmd: &str, data: Value, want_ret: i64) -> Result<Value, TestCaseError> {
        let (status, body) = self.host.logic(&self.token, cmd, data).await;
        prop_assert_eq!(
            (status, body["ret"].as_i64()),
            (200, Some(want_ret)),
            "{}: {}",
            cmd,
            body
        );
        let reply_cmd = format!("{:04}", cmd.parse::<u32>().unwrap() + 1);
        prop_assert_eq!(body["cmd"].as_str(), Some(reply_cmd.as_str()));
        if want_ret != 0 {
            prop_assert!(
                body["msg"].as_str().is_some_and(|m| !m.is_empty()),
                "{}",
                body
            );
        }
        Ok(body["data"].clone())
    }

    async fn sign_in(&mut self) -> TestCaseResult {
        let today = self.host.clock.now_millis().div_euclid(DAY_MS);
        let streak = match self.player.signed_in {
            Some((day, _)) if day == today => {
                return self.command("1001", json!({}), 1).await.map(drop);
            }
            Some((day, streak)) if day == today - 1 => streak + 1,
            _ => 1,
        };
        let data = self.command("1001", json!({}), 0).await?;
        self.player.rewards += SIGN_IN_REWARD;
        self.player.gold += SIGN_IN_REWARD;
        self.player.signed_in = Some((today, streak));
        prop_assert_eq!(data, json!({ "gold": self.player.gold, "streak": streak }));
        Ok(())
    }

    async fn buy(&mut self, good: &Good, count: &Value) -> TestCaseResult {
        let (id, price) = match good {
            Good::Sold(n) => {
                let good = &self.goods[n % self.goods.len()];
                (json!(good.id), Some(good.price))
            }
            Good::Other(id) => (id.clone(), None),
        };
        let whole = count.as_i64().filter(|n| (1..=99).contains(n));
        let want = match (price, whole) {
            (None, _) => 2,
            (Some(_), None) => 3,
            (Some(price), Some(n)) if price * n > self.player.gold => 1,
            _ => 0,
        };
        let data = self
            .command("1103", json!({ "id": id, "count": count }), want)
            .await?;
        if let (Some(price), Some(n), 0) = (price, whole, want) {
            self.bought(id.as_str().unwrap(), price, n);
            let want = json!({ "gold": self.player.gold, "items": self.player.items });
            prop_assert_eq!(data, want);
        }
        Ok(())
    }

    /// Records a purchase the host acknowledged: in the model and in the ledger.
    fn bought(&mut self, id: &str, price: i64, count: i64) {
        self.player.gold -= price * count;
        self.player.spent += price * count;
        *self.player.items.entry(id.to_owned()).or_default() += count;
        *self.player.bought.entry(id.to_owned()).or_default() += count;
    }

    /// Valid purchases sent at once: each is done (0) or refused for want of gold (1); the
    /// done ones' balances form one sequence from the balance before, each lower by its cost;
    /// a refused one costs more than what is left (nothing in a burst adds gold).
    async fn burst(&mut self, buys: &[(usize, i64)]) -> TestCaseResult {
        let goods = self.goods;
        let buys: Vec<(&Sold, i64)> = buys
            .iter()
            .map(|&(n, count)| (&goods[n % goods.len()], count))
            .collect();
        let replies = join_all(buys.iter().map(|(good, count)| {
            let data = json!({ "id": good.id, "count": count });
            self.host.logic(&self.token, "1103", data)
        }))
        .await;
        let mut done = Vec::new();
        let mut refused = Vec::new();
        for ((good, count), (status, body)) in buys.iter().zip(&replies) {
            prop_assert_eq!(status, &200, "{}", body);
            match body["ret"].as_i64() {
                Some(0) => done.push((body["data"]["gold"].as_i64().unwrap(), *good, *count)),
                Some(1) => refused.push(good.price * count),
                _ => prop_assert!(false, "a valid purchase got {}", body),
            }
        }
        done.sort_by_key(|(gold, _, _)| -gold);
        for (gold, good, count) in done {
            self.bought(&good.id, good.price, count);
            prop_assert_eq!(
                gold,
                self.player.gold,
                "the done purchases are not one sequence"
            );
        }
        for cost in refused {
            prop_assert!(
                cost > self.player.gold,
                "refused {} with {} left",
                cost,
                self.player.gold
            );
        }
        Ok(())
    }

    async fn profile(&mut self, name: &Value) -> TestCaseResult {
        let valid = name
            .as_str()
            .map(str::trim)
            .filter(|n| (1..=32).contains(&n.chars().count()));
        let data = self
            .command(
                "1201",
                json!({ "name": name }),
                if valid.is_some() { 0 } else { 1 },
            )
            .await?;
        if let Some(name) = valid {
            self.player.name = name.to_owned();
            self.check_record(&data)?;
        }
        Ok(())
    }

    fn check_record(&self, record: &Value) -> TestCaseResult {
        prop_assert_eq!(
            record["gold"].as_i64(),
            Some(self.player.gold),
            "{}",
            record
        );
        prop_assert_eq!(&record["items"], &json!(self.player.items), "{}", record);
        prop_assert_eq!(record["name"].as_str(), Some(self.player.name.as_str()));
        prop_assert_eq!(record["diamond"].as_i64(), Some(0));
        Ok(())
    }

    /// The ledger holds for the record, as `1203` replies it and as the store keeps it.
    async fn check_ledger(&self) -> TestCaseResult {
        let Player { rewards, spent, .. } = self.player;
        let balance = START_GOLD + rewards - spent;
        let record = self.command("1203", json!({}), 0).await?;
        prop_assert_eq!(record["gold"].as_i64(), Some(balance), "{}", record);
        prop_assert_eq!(&record["items"], &json!(self.player.bought), "{}", record);
        let details = self.host.state.store.find_player(&self.account).await;
        let stored = details.expect("the store answers").expect("the player");
        prop_assert_eq!(stored.player.gold, balance);
        prop_assert_eq!(&stored.player.items, &self.player.bought);
        self.check_record(&record)
    }
}
