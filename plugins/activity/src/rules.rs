//! The daily sign-in: gold once per UTC day (the designers' table `reward.json`), and a
//! streak of consecutive days.

use plugin_api::{refuse, Ctx, RefusalCode, Reply, TableError, Tables};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `1001`: the player has already signed in today.
pub const ALREADY_SIGNED_IN: RefusalCode = RefusalCode::new(1, "already_signed_in");

/// What one sign-in grants: the table `reward.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    pub gold: i64,
}

/// Reads `activity.tables/reward.json` (`{"gold": N}`, N above 0).
pub fn read_tables(tables: &Tables<'_>) -> Result<Reward, TableError> {
    let reward: Reward = tables.json("reward.json")?;
    if reward.gold <= 0 {
        return Err(TableError::file("reward.json", "`gold` must be above 0"));
    }
    Ok(reward)
}

/// What this module keeps per player (its private data; no other module sees it): saved-data
/// schema 2.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignIn {
    /// The current run of consecutive days; `None` before the first sign-in.
    pub streak: Option<Streak>,
    /// The longest run so far.
    pub best: u32,
}

/// A run of consecutive days signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Streak {
    /// The UTC day (days since 1970-01-01) of the last sign-in.
    pub last_day: i64,
    /// Consecutive days signed in, ending on `last_day`.
    pub days: u32,
}

/// Saved-data schema 1, as release 0.1 kept it: the last day and the streak side by side.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInV1 {
    pub last_day: Option<i64>,
    pub streak: u32,
}

/// Schema 1 to 2. The best run is not known yet: the current one is the best known.
pub fn upgrade_from_1(old: SignInV1) -> Result<SignIn, String> {
    match old.last_day {
        Some(last_day) => Ok(SignIn {
            streak: Some(Streak {
                last_day,
                days: old.streak,
            }),
            best: old.streak,
        }),
        None if old.streak == 0 => Ok(SignIn::default()),
        None => Err(format!(
            "a streak of {} days without a last sign-in day",
            old.streak
        )),
    }
}

/// Schema 2 back to 1: the best run is dropped (schema 1 has no place for it).
pub fn downgrade_to_1(new: SignIn) -> Result<SignInV1, String> {
    Ok(match new.streak {
        Some(streak) => SignInV1 {
            last_day: Some(streak.last_day),
            streak: streak.days,
        },
        None => SignInV1::default(),
    })
}

/// `1001`: signs in for today. Refusal [`ALREADY_SIGNED_IN`].
pub fn sign_in(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    // The host clock, not the system's: tests and the host agree on what day it is.
    let today = ctx.host.today();
    let mut state: SignIn = ctx.saved();
    let days = match state.streak {
        Some(streak) if streak.last_day == today => {
            return refuse(
                ALREADY_SIGNED_IN,
                "already signed in today, come back tomorrow (UTC)",
            )
        }
        Some(streak) if streak.last_day == today - 1 => streak.days + 1,
        _ => 1,
    };
    state.streak = Some(Streak {
        last_day: today,
        days,
    });
    state.best = state.best.max(days);
    ctx.player.gold += ctx.tables::<Reward>().gold;
    ctx.save(&state);
    Ok(json!({ "gold": ctx.player.gold, "streak": days }))
}

#[cfg(test)]
mod tests;
