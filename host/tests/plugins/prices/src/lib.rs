//! Test-only module `prices` (prefix 93): a shop whose catalogue is the data table
//! `prices.tables/goods.csv` (`id,price`), read once per library and tables, checked (a price
//! above 0, each id once) and shared by every command.

use plugin_api::{refuse, Ctx, RefusalCode, Reply, TableError, Tables};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

plugin_api::export_module! {
    name: "prices",
    prefix: "93",
    version: "1.0.0",
    refusals: [NO_SUCH_GOOD, NOT_ENOUGH_GOLD],
    tables: read_catalogue,
    commands: { "9301" => quote, "9303" => buy, "9305" => quote_slowly, "9307" => buy_slowly },
}

const NO_SUCH_GOOD: RefusalCode = RefusalCode::new(1, "no_such_good");
const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(2, "not_enough_gold");

/// The catalogue: price by id.
struct Catalogue(BTreeMap<String, i64>);

#[derive(Deserialize)]
struct Good {
    id: String,
    price: i64,
}

fn read_catalogue(tables: &Tables<'_>) -> Result<Catalogue, TableError> {
    let mut catalogue = BTreeMap::new();
    for (line, good) in tables.csv_lines::<Good>("goods.csv")? {
        if good.price <= 0 {
            return Err(TableError::at(
                "goods.csv",
                line,
                format!("the price of `{}` must be above 0", good.id),
            ));
        }
        if catalogue.insert(good.id.clone(), good.price).is_some() {
            return Err(TableError::at(
                "goods.csv",
                line,
                format!("`{}` is listed twice", good.id),
            ));
        }
    }
    Ok(Catalogue(catalogue))
}

#[derive(Deserialize)]
struct Which {
    id: String,
}

fn price_of(ctx: &Ctx<'_>, id: &str) -> Result<i64, plugin_api::Refusal> {
    let catalogue: &Catalogue = ctx.tables();
    match catalogue.0.get(id) {
        Some(price) => Ok(*price),
        None => refuse(NO_SUCH_GOOD, format!("no good `{id}`")),
    }
}

/// 9301 `{"id"}`: the price, changing nothing.
fn quote(ctx: &mut Ctx<'_>, which: Which) -> Reply {
    let price = price_of(ctx, &which.id)?;
    Ok(json!({ "id": which.id, "price": price }))
}

/// 9303 `{"id"}`: buys one for its price.
fn buy(ctx: &mut Ctx<'_>, which: Which) -> Reply {
    let price = price_of(ctx, &which.id)?;
    if ctx.player.gold < price {
        return refuse(NOT_ENOUGH_GOLD, "not enough gold");
    }
    ctx.player.gold -= price;
    *ctx.player.items.entry(which.id.clone()).or_insert(0) += 1;
    Ok(json!({ "id": which.id, "price": price, "gold": ctx.player.gold }))
}

#[derive(Deserialize)]
struct Slowly {
    id: String,
    ms: u64,
}

/// 9305 `{"id", "ms"}`: the price, read before and after waiting `ms` (a command that is
/// still running when its tables change).
fn quote_slowly(ctx: &mut Ctx<'_>, slowly: Slowly) -> Reply {
    let before = price_of(ctx, &slowly.id)?;
    std::thread::sleep(std::time::Duration::from_millis(slowly.ms));
    let after = price_of(ctx, &slowly.id)?;
    Ok(json!({ "id": slowly.id, "before": before, "after": after }))
}

/// 9307 `{"id", "ms"}`: waits `ms`, then buys one (a turn that another host's turn on the same
/// player overtakes).
fn buy_slowly(ctx: &mut Ctx<'_>, slowly: Slowly) -> Reply {
    std::thread::sleep(std::time::Duration::from_millis(slowly.ms));
    buy(ctx, Which { id: slowly.id })
}
