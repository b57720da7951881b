//! What a command asks of the host beyond its own player's state: pushes to players (real-time
//! messages over their sockets, docs/PROTOCOL.md "Pushes"), changes to the module's groups, and
//! gold given to other players.
//!
//! A handler records them on its [`Ctx`](crate::Ctx) ([`Ctx::push`](crate::Ctx::push),
//! [`Ctx::join`](crate::Ctx::join), ...); they cross the boundary as one JSON text beside the
//! command's other changes, and the host applies them in the same transaction as the turn's
//! write, only if the turn commits: a refused or failed command pushes nothing. The types here
//! are that JSON's shape, shared by the glue that writes it and the host that reads it.

use crate::authoring::Refusal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything a command asks beyond its player's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effects {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<Push>,
    /// Groups of this module the command's player joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// Groups of this module the command's player leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leave: Vec<String>,
    /// Gold given to other players, in the same turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gifts: Vec<Gift>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.pushes.is_empty()
            && self.join.is_empty()
            && self.leave.is_empty()
            && self.gifts.is_empty()
    }
}

/// Gold added to another player's record, committed with the command's turn (the host locks
/// both players, in a fixed order). The command takes the gold from its own player itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gift {
    /// The account of the player who gets it.
    pub account: String,
    /// Positive.
    pub gold: i64,
    /// The refusal the whole command gets when no player has that account.
    pub missing: MissingRefusal,
}

/// One push: what it is (`kind`, `data`), to whom, and whether it is kept for a player who is
/// offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Push {
    pub to: PushTo,
    /// Short lowercase words (`gift`, `message`): the client tells pushes apart by it.
    pub kind: String,
    /// A JSON object.
    pub data: Value,
    /// Kept (for the host's retention) and delivered when the player connects again; otherwise
    /// it reaches only sockets open when it is sent.
    pub persistent: bool,
}

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushTo {
    #[serde(flatten)]
    pub target: Target,
    /// For a push to an account: the refusal the whole command gets when no player has that
    /// account (then nothing is written). Without it, such a push is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingRefusal>,
}

/// A push's addressee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A player, by id.
    Player(String),
    /// A player, by the account they log in with.
    Account(String),
    /// Every member of one of the module's groups.
    Group(String),
}

/// A [`Refusal`] as the effects carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRefusal {
    pub code: i32,
    pub msg: String,
}

impl PushTo {
    /// The player with this id.
    pub fn player(player_id: impl Into<String>) -> PushTo {
        PushTo::to(Target::Player(player_id.into()))
    }

    /// The player who logs in with this account. A push to an account no player has is
    /// dropped, unless [`PushTo::or_refuse`] says to refuse the command instead.
    pub fn account(account: impl Into<String>) -> PushTo {
        PushTo::to(Target::Account(account.into()))
    }

    /// Every member of the module's group `name` (see [`Ctx::join`](crate::Ctx::join)).
    pub fn group(name: impl Into<String>) -> PushTo {
        PushTo::to(Target::Group(name.into()))
    }

    /// Refuses the whole command with `refusal` (nothing is written, nothing pushed) if the
    /// account does not exist. Only for [`PushTo::account`].
    pub fn or_refuse(mut self, refusal: Refusal) -> PushTo {
        self.missing = Some(MissingRefusal {
            code: refusal.code,
            msg: refusal.msg,
        });
        self
    }

    fn to(target: Target) -> PushTo {
        PushTo {
            target,
            missing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RefusalCode;
    use serde_json::json;

    #[test]
    fn effects_cross_as_the_json_the_host_reads() {
        let effects = Effects {
            pushes: vec![Push {
                to: PushTo::account("bob")
                    .or_refuse(RefusalCode::new(2, "no_such_account").because("no bob")),
                kind: "gift".into(),
                data: json!({ "gold": 5 }),
                persistent: true,
            }],
            join: vec!["guild".into()],
            leave: vec![],
            gifts: vec![],
        };
        let text = serde_json::to_value(&effects).unwrap();
        assert_eq!(
            text,
            json!({
                "pushes": [{
                    "to": { "account": "bob", "missing": { "code": 2, "msg": "no bob" } },
                    "kind": "gift", "data": { "gold": 5 }, "persistent": true
                }],
                "join": ["guild"]
            })
        );
        assert_eq!(serde_json::from_value::<Effects>(text).unwrap(), effects);
        let group: PushTo = serde_json::from_value(json!({ "group": "room" })).unwrap();
        assert_eq!(group, PushTo::group("room"));
        assert!(serde_json::from_value::<PushTo>(json!({ "planet": "x" })).is_err());
    }
}
