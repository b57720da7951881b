//! The player record that every module shares (docs/PROTOCOL.md, "Demo modules").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Gold a new player starts with.
pub const STARTING_GOLD: i64 = 1000;

/// The record of one player, shared by all modules.
///
/// Modules change it freely during a command; the host checks it afterwards (gold and diamond
/// non-negative, item counts positive, `player_id` unchanged) and refuses to commit otherwise.
/// Numbers are signed so that a bug shows up as a refused negative balance, not a silent wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    pub player_id: String,
    pub name: String,
    pub head_img: String,
    pub gold: i64,
    pub diamond: i64,
    /// Item id to count. An item whose count drops to zero must be removed.
    pub items: BTreeMap<String, i64>,
}

impl Player {
    /// A new player as created on first login.
    pub fn new(
        player_id: impl Into<String>,
        name: impl Into<String>,
        head_img: impl Into<String>,
    ) -> Self {
        Player {
            player_id: player_id.into(),
            name: name.into(),
            head_img: head_img.into(),
            gold: STARTING_GOLD,
            diamond: 0,
            items: BTreeMap::new(),
        }
    }

    /// Why this record may not be stored, if it may not.
    pub fn invalid_reason(&self) -> Option<String> {
        if self.gold < 0 {
            return Some(format!("gold is negative ({})", self.gold));
        }
        if self.diamond < 0 {
            return Some(format!("diamond is negative ({})", self.diamond));
        }
        self.items
            .iter()
            .find(|(_, count)| **count <= 0)
            .map(|(id, count)| {
                format!("item `{id}` has a count of {count}, counts must be positive")
            })
    }
}
