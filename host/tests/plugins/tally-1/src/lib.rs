//! Test-only module `tally` (prefix 94), saved-data schema 1: counts a player's bumps as
//! `{"count": n}`. Build `tally-2` is its next version, whose saved data has another shape.

use plugin_api::{Ctx, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "tally",
    prefix: "94",
    version: "1.0.0",
    commands: { "9401" => bump, "9403" => peek, "9405" => set },
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tally {
    count: u64,
}

/// 9401: one more bump.
fn bump(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let mut tally: Tally = ctx.saved();
    tally.count += 1;
    ctx.save(&tally);
    Ok(json!({ "schema": 1, "total": tally.count }))
}

/// 9403: the count, changing nothing.
fn peek(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let tally: Tally = ctx.saved();
    Ok(json!({ "schema": 1, "total": tally.count }))
}

#[derive(Deserialize)]
struct SetCount {
    count: u64,
}

/// 9405 `{"count": n}`: sets the count (how a test stores data a migration refuses).
fn set(ctx: &mut Ctx<'_>, request: SetCount) -> Reply {
    ctx.save(&Tally {
        count: request.count,
    });
    Ok(json!({ "schema": 1, "total": request.count }))
}
