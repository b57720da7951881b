//! Test-only module `mall` (prefix 11), a later build: everything at half price. The browser
//! tests install it over the demo mall while a page is open, and see the next purchase cost
//! half as much.

use plugin_api::{refuse, Ctx, RefusalCode, Reply};
use serde_json::{json, Value};

/// The demo mall's goods, at half the price.
const GOODS: [(&str, &str, i64); 3] = [
    ("potion", "Healing potion (sale)", 25),
    ("sword", "Iron sword (sale)", 150),
    ("shield", "Oak shield (sale)", 100),
];

const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
const NO_SUCH_GOOD: RefusalCode = RefusalCode::new(2, "no_such_good");
const BAD_COUNT: RefusalCode = RefusalCode::new(3, "bad_count");

fn list_goods(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let goods: Vec<Value> = GOODS
        .iter()
        .map(|(id, name, price)| json!({ "id": id, "name": name, "price": price }))
        .collect();
    Ok(json!({ "goods": goods }))
}

fn buy(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let Some(&(id, _, price)) = GOODS.iter().find(|(id, _, _)| data["id"] == *id) else {
        return refuse(NO_SUCH_GOOD, format!("no such good: {}", data["id"]));
    };
    let count = match data["count"].as_i64() {
        Some(n) if (1..=99).contains(&n) => n,
        _ => return refuse(BAD_COUNT, "count must be a whole number from 1 to 99"),
    };
    if ctx.player.gold < price * count {
        return refuse(
            NOT_ENOUGH_GOLD,
            format!(
                "not enough gold: {} needed, {} owned",
                price * count,
                ctx.player.gold
            ),
        );
    }
    ctx.player.gold -= price * count;
    *ctx.player.items.entry(id.to_owned()).or_insert(0) += count;
    Ok(json!({ "gold": ctx.player.gold, "items": ctx.player.items }))
}

plugin_api::export_module! {
    name: "mall",
    prefix: "11",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [NOT_ENOUGH_GOLD, NO_SUCH_GOOD, BAD_COUNT],
    commands: {
        "1101" => list_goods,
        "1103" => buy,
    },
}
