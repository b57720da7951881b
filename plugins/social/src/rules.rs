//! The social module's rules: gifts and messages between players, and rooms.
//!
//! A gift (`1301`) takes gold from the giver's record and gives it to the receiver's in one
//! turn, with a persistent push of kind `gift` to the receiver.
//! A message (`1303`) is a persistent push of kind `message` to the receiver: kept for them
//! while they are offline, and delivered when they connect again. What is said in a room
//! (`1309`) is a live push of kind `say` to the room's group: only those connected hear it.
//! The rooms a player is in are the module's saved data, and the host's groups (`room:NAME`)
//! follow them, joined and left in the same turn.

use plugin_api::{refuse, Ctx, PushTo, RefusalCode, Reply};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;

pub const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
pub const NO_SUCH_ACCOUNT: RefusalCode = RefusalCode::new(2, "no_such_account");
pub const BAD_TEXT: RefusalCode = RefusalCode::new(3, "bad_text");
pub const TO_YOURSELF: RefusalCode = RefusalCode::new(4, "to_yourself");
pub const NOT_IN_ROOM: RefusalCode = RefusalCode::new(5, "not_in_room");
pub const BAD_ROOM: RefusalCode = RefusalCode::new(6, "bad_room");
pub const TOO_MANY_ROOMS: RefusalCode = RefusalCode::new(7, "too_many_rooms");
pub const BAD_AMOUNT: RefusalCode = RefusalCode::new(8, "bad_amount");

/// The most gold one gift may carry.
pub const MAX_GIFT: i64 = 1_000_000;

/// Longest message, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;
/// Rooms a player may be in at once.
pub const MAX_ROOMS: usize = 10;

/// What the module keeps for a player: the rooms they are in.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub rooms: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gift {
    pub to: String,
    pub gold: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub to: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    pub room: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Say {
    pub room: String,
    pub text: String,
}

/// 1301: gives `gold` to the player of account `to`: it leaves this player's record and
/// reaches theirs in the same turn (the host locks both), and they get a `gift` push naming
/// the giver, now or when they connect again.
pub fn give(ctx: &mut Ctx<'_>, gift: Gift) -> Reply {
    if !(1..=MAX_GIFT).contains(&gift.gold) {
        return refuse(
            BAD_AMOUNT,
            format!("a gift is 1 to {MAX_GIFT} gold, not {}", gift.gold),
        );
    }
    if gift.to == ctx.account() {
        return refuse(
            TO_YOURSELF,
            "a gift to yourself: give it to another account",
        );
    }
    if ctx.player.gold < gift.gold {
        return refuse(
            NOT_ENOUGH_GOLD,
            format!(
                "not enough gold: {} to give, {} owned",
                gift.gold, ctx.player.gold
            ),
        );
    }
    ctx.player.gold -= gift.gold;
    let missing = NO_SUCH_ACCOUNT.because(format!("no player has the account `{}`", gift.to));
    ctx.give_gold(&gift.to, gift.gold, missing);
    let data = json!({ "from": ctx.account(), "name": ctx.player.name, "gold": gift.gold });
    ctx.push(PushTo::account(&gift.to), "gift", &data);
    Ok(json!({ "to": gift.to, "gold": ctx.player.gold }))
}

/// 1303: sends `text` to the player of account `to`, who gets a `message` push naming the
/// sender, now or when they connect again.
pub fn send_message(ctx: &mut Ctx<'_>, message: Message) -> Reply {
    let text = checked_text(&message.text)?;
    if message.to == ctx.account() {
        return refuse(
            TO_YOURSELF,
            "a message to yourself: send it to another account",
        );
    }
    let to = PushTo::account(&message.to)
        .or_refuse(NO_SUCH_ACCOUNT.because(format!("no player has the account `{}`", message.to)));
    let data = json!({ "from": ctx.account(), "name": ctx.player.name, "text": text });
    ctx.push(to, "message", &data);
    Ok(json!({ "to": message.to }))
}

/// 1305: joins room `room`: what is said there reaches the player while connected.
pub fn join_room(ctx: &mut Ctx<'_>, room: Room) -> Reply {
    let name = checked_room(&room.room)?;
    let mut saved: Saved = ctx.saved();
    if !saved.rooms.contains(&name) && saved.rooms.len() >= MAX_ROOMS {
        return refuse(
            TOO_MANY_ROOMS,
            format!("already in {MAX_ROOMS} rooms: leave one first"),
        );
    }
    saved.rooms.insert(name.clone());
    ctx.save(&saved);
    ctx.join(group(&name));
    Ok(json!({ "rooms": saved.rooms }))
}

/// 1307: leaves room `room`.
pub fn leave_room(ctx: &mut Ctx<'_>, room: Room) -> Reply {
    let mut saved: Saved = ctx.saved();
    if !saved.rooms.remove(&room.room) {
        return refuse(NOT_IN_ROOM, format!("not in room `{}`", room.room));
    }
    ctx.save(&saved);
    ctx.leave(group(&room.room));
    Ok(json!({ "rooms": saved.rooms }))
}

/// 1309: says `text` in a room the player is in: everyone in it who is connected hears it (a
/// `say` push, not kept).
pub fn say(ctx: &mut Ctx<'_>, say: Say) -> Reply {
    let text = checked_text(&say.text)?;
    let saved: Saved = ctx.saved();
    if !saved.rooms.contains(&say.room) {
        return refuse(
            NOT_IN_ROOM,
            format!("not in room `{}`: join it first (1305)", say.room),
        );
    }
    let data = json!({ "room": say.room, "from": ctx.account(), "text": text });
    ctx.push_live(PushTo::group(group(&say.room)), "say", &data);
    Ok(json!({ "room": say.room }))
}

/// The host's group of room `name`.
fn group(name: &str) -> String {
    format!("room:{name}")
}

fn checked_text(text: &str) -> Result<String, plugin_api::Refusal> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return refuse(
            BAD_TEXT,
            format!("a message is 1 to {MAX_TEXT_CHARS} characters, not {chars}"),
        );
    }
    Ok(text.to_owned())
}

fn checked_room(room: &str) -> Result<String, plugin_api::Refusal> {
    let fits = (1..=MAX_ROOM_CHARS).contains(&room.chars().count())
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !fits {
        return refuse(
            BAD_ROOM,
            format!("a room name is 1 to {MAX_ROOM_CHARS} characters from A-Z a-z 0-9 - _"),
        );
    }
    Ok(room.to_owned())
}

#[cfg(test)]
mod tests;
