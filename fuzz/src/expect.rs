//! What a reply must be, read from PROTOCOL.md independently of the host's parser: the
//! envelopes, the host codes with their HTTP statuses, and, for the demo modules, what each
//! command does to a new player's record (PROTOCOL.md's table, with the limits it leaves to
//! the modules taken from `plugins/*/src/rules.rs`).

use crate::Reply;
use plugin_api::Player;
use serde_json::{json, Map, Value};
use std::path::Path;

/// A valid `POST /login` body.
#[derive(Debug)]
pub struct Login {
    pub account: String,
    pub name: Option<String>,
    pub head_img: Option<String>,
}

/// A valid `POST /logic` envelope.
#[derive(Debug)]
pub struct Logic {
    pub cmd: String,
    pub data: Map<String, Value>,
}

/// What a command must do.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// `ret: 0` with this reply `data`, leaving this record.
    Done { data: Value, player: Player },
    /// A module's refusal with one of these codes; nothing changes.
    Refused(&'static [i64]),
    /// -1: no module serves it; nothing changes.
    NoSuchCommand,
}

/// The mall's catalogue, as `1101` first replied it.
#[derive(Debug, Clone)]
pub struct Shop {
    /// That reply's `data`: every later `1101` must reply the same.
    pub reply: Value,
    pub goods: Vec<Good>,
}

/// One good of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Good {
    pub id: String,
    pub price: i64,
}

/// The HTTP status PROTOCOL.md's table gives a `ret` on the client endpoints.
pub fn status_of(ret: i64) -> u16 {
    match ret {
        0.. | -1 => 200,
        -2 => 400,
        -3 => 401,
        -4 => 413,
        -5 => 500,
        -6 => 503,
        -7 => 504,
        _ => panic!("ret {ret} is none of PROTOCOL.md's codes"),
    }
}

/// What every reply to `body` owes: the status of its `ret`, never a 5xx (the fuzzed host's
/// database is up, its modules neither fail nor hang, and it is not shutting down: PROTOCOL.md
/// allows 500, 503 and 504 for none of that), a `msg` on every error, and no path of the
/// server (unless the body itself named it: a refusal may quote what it refuses).
pub fn check_reply(reply: &Reply, body: &[u8], root: &Path) {
    let what = &reply.text;
    assert_eq!(reply.status, status_of(reply.ret), "status for ret: {what}");
    assert!(reply.status < 500, "a 5xx for a fuzzed body: {what}");
    if reply.ret != 0 {
        let msg = reply.body.get("msg").and_then(Value::as_str);
        assert!(
            msg.is_some_and(|m| !m.is_empty()),
            "an error without msg: {what}"
        );
    }
    let root = root.to_string_lossy();
    let quoted = String::from_utf8_lossy(body).contains(root.as_ref());
    assert!(
        quoted || !what.contains(root.as_ref()),
        "the reply names the host's folder: {what}"
    );
}

/// The body as PROTOCOL.md reads a login: an object with `account`, 1 to 64 characters of
/// `[A-Za-z0-9_.-]`, and optionally `name` and `head_img`, strings (of at most the host's
/// documented lengths).
pub fn login(body: &[u8]) -> Option<Login> {
    let mut object = object(body)?;
    let account = match object.remove("account")? {
        Value::String(a) if (1..=64).contains(&a.len()) && a.bytes().all(account_byte) => a,
        _ => return None,
    };
    Some(Login {
        account,
        name: optional(&mut object, "name", host::protocol::MAX_NAME_CHARS)?,
        head_img: optional(&mut object, "head_img", host::protocol::MAX_HEAD_IMG_CHARS)?,
    })
}

/// The body as PROTOCOL.md reads a command: an object whose `cmd` is a string of exactly four
/// ASCII digits, with `data`, if present, an object.
pub fn logic(body: &[u8]) -> Option<Logic> {
    let mut object = object(body)?;
    let cmd = match object.remove("cmd")? {
        Value::String(c) if c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()) => c,
        _ => return None,
    };
    let data = match object.remove("data") {
        None => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return None,
    };
    Some(Logic { cmd, data })
}

/// The `cmd` a reply to `cmd` carries: the command plus one.
pub fn reply_cmd(cmd: &str) -> String {
    let n: u32 = cmd.parse().expect("four digits");
    format!("{:04}", n + 1)
}

/// What `cmd` with `data` does to `player`, a new player who has not signed in today.
pub fn command(cmd: &str, data: &Map<String, Value>, player: &Player, shop: &Shop) -> Outcome {
    match cmd {
        // The daily sign-in: +100 gold, a streak of 1 for a player's first.
        "1001" => {
            let mut after = player.clone();
            after.gold += 100;
            Outcome::Done {
                data: json!({ "gold": after.gold, "streak": 1 }),
                player: after,
            }
        }
        "1101" => Outcome::Done {
            data: shop.reply.clone(),
            player: player.clone(),
        },
        "1103" => buy(data, player, &shop.goods),
        "1201" => profile(data, player),
        "1203" => Outcome::Done {
            data: serde_json::to_value(player).expect("a record serializes"),
            player: player.clone(),
        },
        _ => Outcome::NoSuchCommand,
    }
}

/// `1103`: ret 1 not enough gold, 2 no such good, 3 a count not a whole number in 1..=99.
fn buy(data: &Map<String, Value>, player: &Player, goods: &[Good]) -> Outcome {
    let good = data
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| goods.iter().find(|g| g.id == id));
    let count = data
        .get("count")
        .and_then(Value::as_i64)
        .filter(|n| (1..=99).contains(n));
    // PROTOCOL.md does not say which comes first when both are wrong.
    let (good, count) = match (good, count) {
        (None, None) => return Outcome::Refused(&[2, 3]),
        (None, Some(_)) => return Outcome::Refused(&[2]),
        (Some(_), None) => return Outcome::Refused(&[3]),
        (Some(good), Some(count)) => (good, count),
    };
    let cost = good.price * count;
    if cost > player.gold {
        return Outcome::Refused(&[1]);
    }
    let mut after = player.clone();
    after.gold -= cost;
    *after.items.entry(good.id.clone()).or_insert(0) += count;
    Outcome::Done {
        data: json!({ "gold": after.gold, "items": after.items }),
        player: after,
    }
}

/// `1201`: `name` (trimmed, 1 to 32 characters) and `head_img` (at most 512 characters) are
/// strings when present; ret 1 otherwise, changing nothing. Replies the whole record.
fn profile(data: &Map<String, Value>, player: &Player) -> Outcome {
    let name = match data.get("name") {
        None => None,
        Some(Value::String(n)) if (1..=32).contains(&n.trim().chars().count()) => {
            Some(n.trim().to_owned())
        }
        Some(_) => return Outcome::Refused(&[1]),
    };
    let head_img = match data.get("head_img") {
        None => None,
        Some(Value::String(h)) if h.chars().count() <= 512 => Some(h.clone()),
        Some(_) => return Outcome::Refused(&[1]),
    };
    let mut after = player.clone();
    after.name = name.unwrap_or(after.name);
    after.head_img = head_img.unwrap_or(after.head_img);
    Outcome::Done {
        data: serde_json::to_value(&after).expect("a record serializes"),
        player: after,
    }
}

impl Shop {
    /// The catalogue from a `1101` reply's `data`; panics unless it is what PROTOCOL.md says:
    /// at least 3 goods, each with a string `id` and `name` and an integer `price`.
    pub fn from_reply(data: Value) -> Shop {
        let goods = data["goods"].as_array().expect("1101: `goods` is a list");
        assert!(goods.len() >= 3, "1101: fewer than 3 goods: {data}");
        let goods = goods
            .iter()
            .map(|good| {
                assert!(
                    good["name"].is_string(),
                    "1101: a good without name: {good}"
                );
                Good {
                    id: good["id"].as_str().expect("1101: a string id").to_owned(),
                    price: good["price"].as_i64().expect("1101: an integer price"),
                }
            })
            .collect();
        Shop { reply: data, goods }
    }
}

fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// `None` if `key` is present and not a string of at most `max_chars` characters.
fn optional(
    object: &mut Map<String, Value>,
    key: &str,
    max_chars: usize,
) -> Option<Option<String>> {
    match object.remove(key) {
        None => Some(None),
        Some(Value::String(s)) if s.chars().count() <= max_chars => Some(Some(s)),
        Some(_) => None,
    }
}

fn account_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}
