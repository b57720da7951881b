//! The mall's rules: the catalogue and buying.

use plugin_api::{refuse, Ctx, Reply};
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

/// Largest count one purchase may ask for.
pub const MAX_COUNT: i64 = 99;

/// `1101`: the goods on sale.
pub fn list_goods(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "goods": GOODS }))
}

/// `1103`: buys `count` of good `id`. Refusals: 1 not enough gold, 2 no such good, 3 bad count.
pub fn buy(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let id = &data["id"];
    let Some(good) = id.as_str().and_then(find_good) else {
        return refuse(2, format!("no such good: {id}"));
    };
    let count = match data["count"].as_i64() {
        Some(n) if (1..=MAX_COUNT).contains(&n) => n,
        _ => {
            return refuse(
                3,
                format!("count must be a whole number from 1 to {MAX_COUNT}"),
            )
        }
    };
    let cost = good.price * count;
    if ctx.player.gold < cost {
        return refuse(
            1,
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
