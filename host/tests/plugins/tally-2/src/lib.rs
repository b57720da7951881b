//! Test-only module `tally` (prefix 94), saved-data schema 2: the next version of `tally-1`,
//! keeping `{"total": n, "since_upgrade": m}` instead of `{"count": n}`, with its migration,
//! which refuses a count over a million and takes 3 s over a count of 999 999.

use plugin_api::{Ctx, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "tally",
    prefix: "94",
    version: "2.0.0",
    schema: 2,
    migrations: [(1, upgrade, downgrade)],
    commands: { "9401" => bump, "9403" => peek },
}

/// Schema 1, as `tally-1` saves it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TallyV1 {
    count: u64,
}

/// Schema 2.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tally {
    total: u64,
    /// Bumps counted by this version.
    since_upgrade: u64,
}

/// The largest count schema 2 takes: a tally above it cannot be right.
const MOST: u64 = 1_000_000;

/// A count whose upgrade takes this long: a step slower than any deadline a test sets.
const SLOW: (u64, std::time::Duration) = (999_999, std::time::Duration::from_secs(3));

fn upgrade(old: TallyV1) -> Result<Tally, String> {
    if old.count == SLOW.0 {
        std::thread::sleep(SLOW.1);
    }
    if old.count > MOST {
        return Err(format!("a count of {} is over {MOST}", old.count));
    }
    Ok(Tally {
        total: old.count,
        since_upgrade: 0,
    })
}

fn downgrade(new: Tally) -> Result<TallyV1, String> {
    Ok(TallyV1 { count: new.total })
}

/// 9401: one more bump.
fn bump(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let mut tally: Tally = ctx.saved();
    tally.total += 1;
    tally.since_upgrade += 1;
    ctx.save(&tally);
    Ok(json!({ "schema": 2, "total": tally.total, "since_upgrade": tally.since_upgrade }))
}

/// 9403: the count, changing nothing.
fn peek(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let tally: Tally = ctx.saved();
    Ok(json!({ "schema": 2, "total": tally.total }))
}
