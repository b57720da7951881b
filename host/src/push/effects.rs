//! A command's effects ([`plugin_api::effects::Effects`]), checked and resolved into what its
//! turn writes ([`TurnEffects`]): every push addressed to a player id or to one of the
//! module's groups, every gift to a player id (summed per player, in id order), or the refusal
//! the module asked for when an account does not exist.

use super::Accounts;
use crate::protocol::valid_account;
use crate::store::push::{GoldGift, NewPush, PushTarget, TurnEffects};
use crate::store::{Store, StoreError};
use plugin_api::effects::{Effects, Target};
use serde_json::Value;
use std::collections::BTreeMap;

/// Pushes one command may make.
pub const MAX_PUSHES: usize = 100;
/// Players one command may give gold to.
pub const MAX_GIFTS: usize = 10;
/// The most gold one gift may carry.
pub const MAX_GIFT_GOLD: i64 = 1_000_000_000_000;
/// Group changes one command may make.
pub const MAX_GROUP_CHANGES: usize = 100;
/// Longest push kind, group name and player id, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// What the effects come to.
#[derive(Debug)]
pub enum Resolved {
    /// Write these with the turn.
    Write(TurnEffects),
    /// A push's account does not exist, and the module asked to refuse the command then.
    Refuse { code: i32, msg: String },
}

/// Reads a module's effects (JSON text), checking every name and bound; the error says what
/// is wrong, for the module's failure (-5).
pub fn parse(text: &str) -> Result<Effects, String> {
    let effects: Effects = serde_json::from_str(text)
        .map_err(|e| format!("returned effects the host cannot read: {e}"))?;
    if effects.pushes.len() > MAX_PUSHES {
        return Err(format!(
            "pushed {} times in one command, more than {MAX_PUSHES}",
            effects.pushes.len()
        ));
    }
    if effects.join.len() + effects.leave.len() > MAX_GROUP_CHANGES {
        return Err(format!(
            "changed groups more than {MAX_GROUP_CHANGES} times in one command"
        ));
    }
    for push in &effects.pushes {
        if !is_kind(&push.kind) {
            return Err(format!(
                "pushed kind `{}`: a kind is 1 to {MAX_NAME_BYTES} characters from a-z 0-9 _ . -",
                push.kind
            ));
        }
        if !push.data.is_object() {
            return Err(format!(
                "pushed `{}` with data that is not a JSON object",
                push.kind
            ));
        }
        match &push.to.target {
            Target::Player(id) if !is_name(id) => {
                return Err(format!("pushed to player id `{id}`, which cannot be one"))
            }
            Target::Account(account) if !valid_account(account) => {
                // An account no player can have: the same as one nobody has.
            }
            Target::Group(group) if !is_name(group) => return Err(bad_group(group)),
            _ => {}
        }
        if let Some(missing) = &push.to.missing {
            if missing.code <= 0 {
                return Err(format!(
                    "asked to refuse with code {} when an account is missing: codes must be positive",
                    missing.code
                ));
            }
        }
    }
    if let Some(group) = effects
        .join
        .iter()
        .chain(&effects.leave)
        .find(|g| !is_name(g))
    {
        return Err(bad_group(group));
    }
    if effects.gifts.len() > MAX_GIFTS {
        return Err(format!(
            "gave gold {} times in one command, more than {MAX_GIFTS}",
            effects.gifts.len()
        ));
    }
    for gift in &effects.gifts {
        if !(1..=MAX_GIFT_GOLD).contains(&gift.gold) {
            return Err(format!(
                "gave {} gold: a gift is 1 to {MAX_GIFT_GOLD}",
                gift.gold
            ));
        }
        if gift.missing.code <= 0 {
            return Err(format!(
                "asked to refuse with code {} when an account is missing: codes must be positive",
                gift.missing.code
            ));
        }
    }
    Ok(effects)
}

/// The effects with every account resolved to its player; `own` is the turn's player, whom a
/// gift may not name (the module's failure).
pub async fn resolve(
    effects: Effects,
    own: &str,
    accounts: &Accounts,
    store: &dyn Store,
) -> Result<Resolved, ResolveError> {
    let mut gifts: BTreeMap<String, i64> = BTreeMap::new();
    for gift in effects.gifts {
        let player = match valid_account(&gift.account) {
            true => accounts.player(store, &gift.account).await?,
            false => None,
        };
        let Some(player_id) = player else {
            return Ok(Resolved::Refuse {
                code: gift.missing.code,
                msg: gift.missing.msg,
            });
        };
        if player_id == own {
            return Err(ResolveError::Module(
                "gave gold to the command's own player: change ctx.player instead".into(),
            ));
        }
        let total = gifts.entry(player_id).or_default();
        *total = total.saturating_add(gift.gold);
    }
    let mut pushes = Vec::with_capacity(effects.pushes.len());
    for push in effects.pushes {
        let target = match push.to.target {
            Target::Player(id) => PushTarget::Player(id),
            Target::Group(group) => PushTarget::Group(group),
            Target::Account(account) => {
                let player = match valid_account(&account) {
                    true => accounts.player(store, &account).await?,
                    false => None,
                };
                match (player, push.to.missing) {
                    (Some(player_id), _) => PushTarget::Player(player_id),
                    (None, Some(missing)) => {
                        return Ok(Resolved::Refuse {
                            code: missing.code,
                            msg: missing.msg,
                        })
                    }
                    // Nobody to push to, and the module does not mind.
                    (None, None) => continue,
                }
            }
        };
        pushes.push(NewPush {
            target,
            kind: push.kind,
            data: value_text(&push.data),
            persistent: push.persistent,
        });
    }
    Ok(Resolved::Write(TurnEffects {
        pushes,
        join: effects.join,
        leave: effects.leave,
        gifts: gifts
            .into_iter()
            .map(|(player_id, gold)| GoldGift { player_id, gold })
            .collect(),
    }))
}

/// Why effects could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The module asked for what it may not (the command fails, -5).
    #[error("{0}")]
    Module(String),
}

fn value_text(value: &Value) -> String {
    value.to_string()
}

fn is_kind(kind: &str) -> bool {
    (1..=MAX_NAME_BYTES).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// A group name or player id: printable ASCII without spaces.
fn is_name(name: &str) -> bool {
    (1..=MAX_NAME_BYTES).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

fn bad_group(group: &str) -> String {
    format!("named group `{group}`: a group name is 1 to {MAX_NAME_BYTES} printable ASCII characters, no spaces")
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn effects_are_checked_before_anything_is_written() {
        let ok = json!({
            "pushes": [{ "to": { "group": "guild-1" }, "kind": "message", "data": { "text": "hi" }, "persistent": true }],
            "join": ["guild-1"]
        });
        assert!(parse(&ok.to_string()).is_ok());
        let bad = [
            (
                json!({ "pushes": [{ "to": { "group": "g" }, "kind": "Gift!", "data": {}, "persistent": true }] }),
                "kind",
            ),
            (
                json!({ "pushes": [{ "to": { "group": "g" }, "kind": "gift", "data": [1], "persistent": true }] }),
                "JSON object",
            ),
            (
                json!({ "pushes": [{ "to": { "player": "a b" }, "kind": "gift", "data": {}, "persistent": true }] }),
                "player id",
            ),
            (json!({ "join": [""] }), "group name"),
            (json!({ "leave": ["x".repeat(65)] }), "group name"),
            (
                json!({ "pushes": [{ "to": { "account": "bob", "missing": { "code": 0, "msg": "" } }, "kind": "gift", "data": {}, "persistent": true }] }),
                "positive",
            ),
            (json!({ "planets": [] }), "cannot read"),
        ];
        for (effects, said) in bad {
            let error = parse(&effects.to_string()).expect_err(&effects.to_string());
            assert!(error.contains(said), "{effects}: {error}");
        }
        let many = json!({ "join": vec!["g"; 101] });
        assert!(parse(&many.to_string()).unwrap_err().contains("100"));
    }
}
