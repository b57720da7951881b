//! The mall's rules: the catalogue and buying.

use plugin_api::{refuse, Ctx, RefusalCode, Reply};
use serde::Serialize;
use serde_json::{json, Value};

/// One good for sale.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Good {
    pub id: &'static str,
    pub name: &'static str,
    pub price: i64,
}

/// The catalogue. A real game would read it from config; three goods suffice for the demo.
pub const GOODS: [Good; 3] = [
    Good {
        id: "potion",
        name: "Healing potion",
        price: 50,
    },
    Good {
        id: "sword",
        name: "Iron sword",
        price: 300,
    },
    Good {
        id: "shield",
        name: "Oak shield",
        price: 200,
    },
];

/// `1103`: the player has less gold than the purchase costs.
pub const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
/// `1103`: `id` names no good of the catalogue.
pub const NO_SUCH_GOOD: RefusalCode = RefusalCode::new(2, "no_such_good");
/// `1103`: `count` is not a whole number from 1 to [`MAX_COUNT`].
pub const BAD_COUNT: RefusalCode = RefusalCode::new(3, "bad_count");

/// Largest count one purchase may ask for.
pub const MAX_COUNT: i64 = 99;

/// `1101`: the goods on sale.
pub fn list_goods(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "goods": GOODS }))
}

/// `1103`: buys `count` of good `id`. Refusals: [`NOT_ENOUGH_GOLD`], [`NO_SUCH_GOOD`],
/// [`BAD_COUNT`]. (It reads its request as JSON, not a typed struct: protocol v1 answers a
/// missing `id` with 2 and a missing `count` with 3, where a typed request would answer both
/// with one `bad_request` code.)
pub fn buy(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let id = &data["id"];
    let Some(good) = id.as_str().and_then(find_good) else {
        return refuse(NO_SUCH_GOOD, format!("no such good: {id}"));
    };
    let count = match data["count"].as_i64() {
        Some(n) if (1..=MAX_COUNT).contains(&n) => n,
        _ => {
            return refuse(
                BAD_COUNT,
                format!("count must be a whole number from 1 to {MAX_COUNT}"),
            )
        }
    };
    let cost = good.price * count;
    if ctx.player.gold < cost {
        return refuse(
            NOT_ENOUGH_GOLD,
            format!("not enough gold: {cost} needed, {} owned", ctx.player.gold),
        );
    }
    ctx.player.gold -= cost;
    *ctx.player.items.entry(good.id.to_owned()).or_insert(0) += count;
    ctx.host.info(&format!("bought {count} x {}", good.id));
    Ok(json!({ "gold": ctx.player.gold, "items": ctx.player.items }))
}

fn find_good(id: &str) -> Option<Good> {
    GOODS.iter().copied().find(|good| good.id == id)
}

#[cfg(test)]
mod tests;
