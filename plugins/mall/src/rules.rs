//! The mall's rules: the catalogue (the designers' table `goods.csv`) and buying.

use plugin_api::{refuse, Ctx, RefusalCode, Reply, TableError, Tables};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One good for sale: a row of `goods.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Good {
    pub id: String,
    pub name: String,
    pub price: i64,
}

/// The catalogue, in the table's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub goods: Vec<Good>,
}

/// Reads `mall.tables/goods.csv` (`id,name,price`): each id once, a name, a price above 0.
pub fn read_tables(tables: &Tables<'_>) -> Result<Catalogue, TableError> {
    let mut goods: Vec<Good> = Vec::new();
    for (line, good) in tables.csv_lines::<Good>("goods.csv")? {
        let problem = if good.id.is_empty() || good.name.is_empty() {
            Some("every good needs an id and a name".to_owned())
        } else if good.price <= 0 {
            Some(format!("the price of `{}` must be above 0", good.id))
        } else if goods.iter().any(|g| g.id == good.id) {
            Some(format!("`{}` is listed twice", good.id))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(TableError::at("goods.csv", line, problem));
        }
        goods.push(good);
    }
    Ok(Catalogue { goods })
}

/// `1103`: the player has less gold than the purchase costs.
pub const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
/// `1103`: `id` names no good of the catalogue.
pub const NO_SUCH_GOOD: RefusalCode = RefusalCode::new(2, "no_such_good");
/// `1103`: `count` is not a whole number from 1 to [`MAX_COUNT`].
pub const BAD_COUNT: RefusalCode = RefusalCode::new(3, "bad_count");

/// Largest count one purchase may ask for.
pub const MAX_COUNT: i64 = 99;

/// `1101`: the goods on sale.
pub fn list_goods(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "goods": ctx.tables::<Catalogue>().goods }))
}

/// `1103`: buys `count` of good `id`. Refusals: [`NOT_ENOUGH_GOLD`], [`NO_SUCH_GOOD`],
/// [`BAD_COUNT`]. (It reads its request as JSON, not a typed struct: protocol v1 answers a
/// missing `id` with 2 and a missing `count` with 3, where a typed request would answer both
/// with one `bad_request` code.)
pub fn buy(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let id = &data["id"];
    let catalogue: &Catalogue = ctx.tables();
    let Some(good) = id
        .as_str()
        .and_then(|id| catalogue.goods.iter().find(|g| g.id == id))
    else {
        return refuse(NO_SUCH_GOOD, format!("no such good: {id}"));
    };
    let (good_id, price) = (good.id.clone(), good.price);
    let count = match data["count"].as_i64() {
        Some(n) if (1..=MAX_COUNT).contains(&n) => n,
        _ => {
            return refuse(
                BAD_COUNT,
                format!("count must be a whole number from 1 to {MAX_COUNT}"),
            )
        }
    };
    let cost = price * count;
    if ctx.player.gold < cost {
        return refuse(
            NOT_ENOUGH_GOLD,
            format!("not enough gold: {cost} needed, {} owned", ctx.player.gold),
        );
    }
    ctx.player.gold -= cost;
    ctx.host.info(&format!("bought {count} x {good_id}"));
    *ctx.player.items.entry(good_id).or_insert(0) += count;
    Ok(json!({ "gold": ctx.player.gold, "items": ctx.player.items }))
}

#[cfg(test)]
mod tests;
