//! The daily sign-in: +100 gold once per UTC day, and a streak of consecutive days.

use plugin_api::{refuse, Ctx, RefusalCode, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `1001`: the player has already signed in today.
pub const ALREADY_SIGNED_IN: RefusalCode = RefusalCode::new(1, "already_signed_in");

/// Gold granted by one sign-in.
pub const REWARD: i64 = 100;

/// What this module keeps per player (its private data; no other module sees it).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignIn {
    /// The UTC day (days since 1970-01-01) of the last sign-in.
    pub last_day: Option<i64>,
    /// Consecutive days signed in, ending on `last_day`.
    pub streak: u32,
}

/// `1001`: signs in for today. Refusal [`ALREADY_SIGNED_IN`].
pub fn sign_in(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    // The host clock, not the system's: tests and the host agree on what day it is.
    let today = ctx.host.today();
    let mut state: SignIn = ctx.saved();
    if state.last_day == Some(today) {
        return refuse(
            ALREADY_SIGNED_IN,
            "already signed in today, come back tomorrow (UTC)",
        );
    }
    state.streak = if state.last_day == Some(today - 1) {
        state.streak + 1
    } else {
        1
    };
    state.last_day = Some(today);
    ctx.player.gold += REWARD;
    ctx.save(&state);
    Ok(json!({ "gold": ctx.player.gold, "streak": state.streak }))
}

#[cfg(test)]
mod tests;
