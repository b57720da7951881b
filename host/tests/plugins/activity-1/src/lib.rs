//! Test-only: module `activity` (prefix `10`) as release 0.1.0 shipped it, at saved-data
//! schema 1 (`{"last_day": d, "streak": n}`). `plugins/activity` is its next release, at schema
//! 2, with the migration between them; the tests swap from this one to it and roll back.

use plugin_api::{refuse, Ctx, RefusalCode, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "activity",
    prefix: "10",
    version: "0.1.0",
    refusals: [ALREADY_SIGNED_IN],
    commands: { "1001" => sign_in },
}

const ALREADY_SIGNED_IN: RefusalCode = RefusalCode::new(1, "already_signed_in");

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct SignIn {
    last_day: Option<i64>,
    streak: u32,
}

/// `1001`: +100 gold once per UTC day, and the streak of consecutive days.
fn sign_in(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
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
    ctx.player.gold += 100;
    ctx.save(&state);
    Ok(json!({ "gold": ctx.player.gold, "streak": state.streak }))
}
