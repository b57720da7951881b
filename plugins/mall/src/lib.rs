//! The mall module (prefix `11`): a shop selling items for gold.
//!
//! This file is only the glue: it declares the module and its command table. The rules live
//! in `rules.rs`, plain Rust that is unit-tested without loading a library. The catalogue is
//! the designers' table `tables/goods.csv`, installed beside the library as
//! `mall.tables/goods.csv`.

/// The rules are public so that tests and benchmarks can call them without the library.
pub mod rules;

plugin_api::export_module! {
    name: "mall",
    prefix: "11",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [rules::NOT_ENOUGH_GOLD, rules::NO_SUCH_GOOD, rules::BAD_COUNT],
    tables: rules::read_tables,
    commands: {
        "1101" => rules::list_goods,
        "1103" => rules::buy,
    },
}
