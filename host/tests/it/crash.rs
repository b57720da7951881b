//! Crash safety on the real binary: `game-host` killed with SIGKILL (no shutdown path runs,
//! nothing is flushed or checkpointed) in the middle of a write load from several players, then
//! started again on the same data, three times over. Every command that got a `ret: 0` reply
//! is in the data; each player's gold, items, name and sign-in streak are exactly what their
//! applied commands add up to (start + rewards − spending = balance); and the one command per
//! player whose reply the kill cut is applied whole or not at all. On the default SQLite store
//! (WAL, `synchronous = NORMAL`), then on PostgreSQL and MariaDB.
//!
//! Each player sends one command at a time, so at most one of theirs is unanswered at the kill:
//! after the restart their record must equal the acknowledged outcome, or that plus exactly
//! the cut command (its gold, items and module data together). Nothing depends on when the kill
//! lands, only on the replies that arrived before it.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use crate::databases::{Backend, ScratchDb};
use crate::harness::{send, Dirs};
use crate::served::{login, serve_command, start, Served};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

tests_on!(
    [sqlite: Sqlite, postgres: Postgres, mysql: MySql]
    a_killed_host_keeps_every_acknowledged_command_and_applies_none_by_half,
);

/// Players writing at once, each on connections of its own.
const PLAYERS: usize = 6;
/// Kills (and restarts) per test.
const KILLS: usize = 5;
/// Acknowledged commands each player must have had since the start before the kill comes.
const ACKS_BEFORE_KILL: u64 = 15;
/// Gold an operator grants each player first: more than the load can spend, so that no
/// purchase is refused and each one moves gold.
const GRANT: i64 = 1_000_000;
/// What the activity module's daily sign-in (1001) adds.
const REWARD: i64 = 100;

/// A command of the write load.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// 1103: `count` of good `id`.
    Buy { id: &'static str, count: i64 },
    /// 1001: the daily sign-in (+100 gold, the streak in the activity module's own data).
    SignIn,
    /// 1201: a new name.
    Rename(String),
}

impl Command {
    /// Player `player`'s command number `seq` (from 1): mostly purchases of changing goods and
    /// counts (so that the gold alone tells which one was applied), a rename now and then, and
    /// the sign-in: the first succeeds, later ones the same day are refused and change nothing.
    fn of(player: usize, seq: u64) -> Command {
        const GOODS: [&str; 3] = ["potion", "sword", "shield"];
        match seq % 8 {
            1 => Command::SignIn,
            5 => Command::Rename(format!("crash{player}-{seq}")),
            n => Command::Buy {
                id: GOODS[(player + seq as usize) % GOODS.len()],
                count: 1 + (n as i64 % 3),
            },
        }
    }

    fn body(&self) -> Value {
        match self {
            Command::Buy { id, count } => {
                json!({ "cmd": "1103", "data": { "id": id, "count": count } })
            }
            Command::SignIn => json!({ "cmd": "1001" }),
            Command::Rename(name) => json!({ "cmd": "1201", "data": { "name": name } }),
        }
    }
}

/// An acknowledged command's reply: `ret: 0` and its data, or a module's refusal.
#[derive(Debug)]
enum Reply {
    Done(Value),
    Refused(i64),
}

/// What a player's record and sign-in data are, or must be.
#[derive(Debug, Clone, PartialEq)]
struct State {
    gold: i64,
    items: BTreeMap<String, i64>,
    name: String,
    /// The activity module's `streak`; `None` before the first sign-in.
    streak: Option<u64>,
}

impl State {
    /// The states `command` applied to this one may lead to: one, or two for a sign-in (its
    /// streak continues, or starts again after a missed UTC day).
    fn applied(&self, command: &Command, prices: &BTreeMap<String, i64>) -> Vec<State> {
        let mut next = self.clone();
        match command {
            Command::Buy { id, count } => {
                next.gold -= prices[*id] * count;
                *next.items.entry((*id).to_owned()).or_default() += count;
            }
            Command::Rename(name) => next.name = name.clone(),
            Command::SignIn => {
                next.gold += REWARD;
                let mut restarted = next.clone();
                next.streak = Some(self.streak.unwrap_or(0) + 1);
                restarted.streak = Some(1);
                if restarted != next {
                    return vec![next, restarted];
                }
            }
        }
        vec![next]
    }

    /// Whether `reply` (a `ret: 0` reply's data to `command`) says this state.
    fn agrees(&self, command: &Command, reply: &Value) -> bool {
        let gold = reply["gold"].as_i64() == Some(self.gold);
        match command {
            Command::Buy { .. } => gold && items_of(reply) == self.items,
            Command::SignIn => gold && reply["streak"].as_u64() == self.streak,
            Command::Rename(_) => {
                gold && items_of(reply) == self.items && reply["name"] == self.name.as_str()
            }
        }
    }
}

fn items_of(record: &Value) -> BTreeMap<String, i64> {
    serde_json::from_value(record["items"].clone()).unwrap_or_default()
}

/// One player of the test, and what the test knows of it.
struct Tracked {
    n: usize,
    player_id: String,
    token: String,
    /// The state the acknowledged and resolved commands lead to.
    state: State,
    /// Gold after the operator's grant, before any command.
    start_gold: i64,
    /// Every command applied, in order: the acknowledged ones, and cut ones found applied.
    applied: Vec<Command>,
    /// The command whose reply the last kill cut, until the restart shows its fate.
    cut: Option<Command>,
    next_seq: u64,
    cut_applied: usize,
    cut_not_applied: usize,
}

impl Tracked {
    /// Logs player `n` in and grants it [`GRANT`] gold through the admin API.
    async fn join(client: &reqwest::Client, served: &Served, n: usize) -> Tracked {
        let login = client
            .post(served.url("/login"))
            .json(&json!({ "account": format!("crash{n}") }));
        let (status, login) = send(login).await;
        assert_eq!(status, 200, "{login}");
        let player_id = login["player_id"].as_str().unwrap().to_owned();
        let grant = client
            .post(served.admin_url(&format!("/admin/players/{player_id}/grant")))
            .json(&json!({ "operator": "test", "reason": "crash test", "gold": GRANT }));
        let (status, granted) = send(grant).await;
        assert_eq!((status, &granted["ret"]), (200, &json!(0)), "{granted}");
        let token = login["token"].as_str().unwrap().to_owned();
        let state = read_state(client, served, &player_id, &token).await;
        assert_eq!(state.gold, 1000 + GRANT, "{state:?}");
        Tracked {
            n,
            player_id,
            token,
            start_gold: state.gold,
            state,
            applied: Vec::new(),
            cut: None,
            next_seq: 1,
            cut_applied: 0,
            cut_not_applied: 0,
        }
    }

    /// Takes in what the player's client saw before and at the kill.
    fn take(&mut self, played: Played, prices: &BTreeMap<String, i64>) {
        assert!(
            played.unexpected.is_empty(),
            "player {}: {:#?}",
            self.n,
            played.unexpected
        );
        for (command, reply) in played.acked {
            match reply {
                Reply::Done(data) => {
                    let next = self.state.applied(&command, prices);
                    self.state = next
                        .into_iter()
                        .find(|state| state.agrees(&command, &data))
                        .unwrap_or_else(|| {
                            panic!(
                                "player {}: {command:?} replied {data} after {:?}",
                                self.n, self.state
                            )
                        });
                    self.applied.push(command);
                }
                // A sign-in the same UTC day; nothing else is ever refused here.
                Reply::Refused(ret) => assert!(
                    command == Command::SignIn && ret == 1,
                    "player {}: {command:?} refused with {ret}",
                    self.n
                ),
            }
        }
        self.next_seq = played.next_seq;
        self.cut = played.cut;
    }

    /// After a restart: the data must be the acknowledged state, or that with the cut command
    /// applied whole; whichever it is becomes the state.
    async fn resolve(
        &mut self,
        client: &reqwest::Client,
        served: &Served,
        prices: &BTreeMap<String, i64>,
    ) {
        let found = read_state(client, served, &self.player_id, &self.token).await;
        let Some(cut) = self.cut.take() else {
            assert_eq!(found, self.state, "player {}: lost or changed", self.n);
            return;
        };
        if found == self.state {
            self.cut_not_applied += 1;
        } else if self.state.applied(&cut, prices).contains(&found) {
            self.cut_applied += 1;
            self.applied.push(cut);
            self.state = found;
        } else {
            panic!(
                "player {}: after the restart the data is {found:?}: neither the acknowledged \
                 state {:?} nor that plus the command the kill cut ({cut:?}): a command was lost, \
                 applied twice or applied in part",
                self.n, self.state
            );
        }
    }

    /// Gold and items from the ledger of applied commands alone, against the data.
    fn check_ledger(&self, found: &State, prices: &BTreeMap<String, i64>) {
        let (mut rewards, mut spent, mut items) = (0, 0, BTreeMap::<String, i64>::new());
        for command in &self.applied {
            match command {
                Command::SignIn => rewards += REWARD,
                Command::Buy { id, count } => {
                    spent += prices[*id] * count;
                    *items.entry((*id).to_owned()).or_default() += count;
                }
                Command::Rename(_) => {}
            }
        }
        assert_eq!(
            found.gold,
            self.start_gold + rewards - spent,
            "player {}: start {} + rewards {rewards} - spending {spent}",
            self.n,
            self.start_gold
        );
        assert_eq!(found.items, items, "player {}: items", self.n);
    }
}

/// The record through the API (with the player's token from before any restart: sessions
/// survive too) and the activity module's data through the admin API, which must agree.
async fn read_state(
    client: &reqwest::Client,
    served: &Served,
    player_id: &str,
    token: &str,
) -> State {
    let record = client
        .post(served.url("/logic"))
        .bearer_auth(token)
        .json(&json!({ "cmd": "1203" }));
    let (status, record) = send(record).await;
    assert_eq!((status, &record["ret"]), (200, &json!(0)), "{record}");
    let record = &record["data"];
    let details = client.get(served.admin_url(&format!("/admin/players/{player_id}")));
    let (status, details) = send(details).await;
    assert_eq!((status, &details["ret"]), (200, &json!(0)), "{details}");
    let details = &details["player"];
    assert_eq!(
        &details["player"], record,
        "the admin API and /logic disagree"
    );
    assert_eq!(record["diamond"], 0, "{record}");
    State {
        gold: record["gold"].as_i64().unwrap(),
        items: items_of(record),
        name: record["name"].as_str().unwrap().to_owned(),
        // Saved-data schema 2 of the activity module: the current run as a record.
        streak: details["modules"]["activity"]["streak"]["days"].as_u64(),
    }
}

/// What one player's client saw in one round.
#[derive(Debug, Default)]
struct Played {
    acked: Vec<(Command, Reply)>,
    /// The command sent when the host died, whose reply never came (or could not be sent).
    cut: Option<Command>,
    next_seq: u64,
    /// Anything but a `ret: 0` or an expected refusal before the kill, or a host error.
    unexpected: Vec<String>,
}

/// One player's client: its commands one at a time until the kill cuts one.
async fn play(
    url: String,
    token: String,
    n: usize,
    from: u64,
    acks: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
) -> Played {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut played = Played::default();
    for seq in from.. {
        let command = Command::of(n, seq);
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .json(&command.body())
            .send();
        let reply = match sent.await {
            Ok(response) => {
                let status = response.status();
                response.json::<Value>().await.map(|body| (status, body))
            }
            Err(e) => Err(e),
        };
        match reply {
            Ok((status, body)) if status == 200 && body["ret"] == 0 => {
                played
                    .acked
                    .push((command, Reply::Done(body["data"].clone())));
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, body)) if status == 200 && body["ret"].as_i64() > Some(0) => {
                played
                    .acked
                    .push((command, Reply::Refused(body["ret"].as_i64().unwrap())));
            }
            Ok((status, body)) => played
                .unexpected
                .push(format!("{command:?}: {status} {body}")),
            Err(e) => {
                if !killed.load(Ordering::SeqCst) {
                    played
                        .unexpected
                        .push(format!("{command:?} before the kill: {e:?}"));
                }
                played.cut = Some(command);
                played.next_seq = seq + 1;
                return played;
            }
        }
    }
    unreachable!("the kill ends every client")
}

/// Runs every player's client against `served` until each has had [`ACKS_BEFORE_KILL`]
/// acknowledged commands, kills the host with SIGKILL, and returns what each client saw.
async fn load_until_killed(served: Served, players: &[Tracked]) -> Vec<Played> {
    let killed = Arc::new(AtomicBool::new(false));
    let acks: Vec<Arc<AtomicU64>> = players.iter().map(|_| Arc::default()).collect();
    let clients: Vec<_> = players
        .iter()
        .zip(&acks)
        .map(|(player, acks)| {
            tokio::spawn(play(
                served.url("/logic"),
                player.token.clone(),
                player.n,
                player.next_seq,
                acks.clone(),
                killed.clone(),
            ))
        })
        .collect();
    for _ in 0..3000 {
        if acks
            .iter()
            .all(|a| a.load(Ordering::Relaxed) >= ACKS_BEFORE_KILL)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let slowest = acks.iter().map(|a| a.load(Ordering::Relaxed)).min();
    assert!(
        slowest >= Some(ACKS_BEFORE_KILL),
        "the load stalled: {slowest:?}"
    );
    killed.store(true, Ordering::SeqCst);
    tokio::task::block_in_place(|| served.crash());
    let mut played = Vec::new();
    for client in clients {
        played.push(client.await.unwrap());
    }
    played
}

/// `game-host serve` with the demo modules on `dirs`: on the default SQLite store in its data
/// folder, or on `db`'s server.
fn start_host(db: &ScratchDb, dirs: &Dirs) -> Served {
    let mut command = serve_command(dirs);
    match db.backend {
        Backend::Sqlite => command
            .env_remove("GAME_HOST_DATABASE_URL")
            .env_remove("GAME_HOST_STORE_URL"),
        _ => command.env("GAME_HOST_DATABASE_URL", &db.url),
    };
    tokio::task::block_in_place(|| start(command))
}

async fn a_killed_host_keeps_every_acknowledged_command_and_applies_none_by_half(db: ScratchDb) {
    let dirs = Dirs::new();
    let client = reqwest::Client::new();
    let mut served = start_host(&db, &dirs);
    let token = login(&client, &served.url("/login"), "shopper").await;
    let goods = client
        .post(served.url("/logic"))
        .bearer_auth(&token)
        .json(&json!({ "cmd": "1101" }));
    let (_, goods) = send(goods).await;
    let prices: BTreeMap<String, i64> = goods["data"]["goods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|good| {
            (
                good["id"].as_str().unwrap().to_owned(),
                good["price"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut players = Vec::new();
    for n in 0..PLAYERS {
        players.push(Tracked::join(&client, &served, n).await);
    }

    for _ in 0..KILLS {
        let round = load_until_killed(served, &players).await;
        for (player, played) in players.iter_mut().zip(round) {
            player.take(played, &prices);
        }
        if db.backend == Backend::Sqlite {
            // The host had no chance to checkpoint: the restart recovers from the log.
            let wal = dirs.data().join("game.db-wal");
            assert!(wal.is_file(), "{} is missing after the kill", wal.display());
        }
        served = start_host(&db, &dirs);
        for player in &mut players {
            player.resolve(&client, &served, &prices).await;
        }
    }

    for player in &players {
        let found = read_state(&client, &served, &player.player_id, &player.token).await;
        player.check_ledger(&found, &prices);
        assert!(
            player
                .applied
                .iter()
                .any(|c| matches!(c, Command::Buy { .. }))
                && player.applied.contains(&Command::SignIn)
                && player
                    .applied
                    .iter()
                    .any(|c| matches!(c, Command::Rename(_))),
            "player {} ran every kind of command: {:?}",
            player.n,
            player.applied
        );
    }
    let count = |f: fn(&Tracked) -> usize| players.iter().map(f).sum::<usize>();
    eprintln!(
        "{:?}: {} commands applied over {KILLS} kills; of the {} the kills cut, {} were applied",
        db.backend,
        count(|p| p.applied.len()),
        count(|p| p.cut_applied + p.cut_not_applied),
        count(|p| p.cut_applied)
    );
}
