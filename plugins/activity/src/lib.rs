//! The activity module (prefix `10`): the daily sign-in.
//!
//! This file is only the glue: it declares the module and its command table. The rules live
//! in `rules.rs`, plain Rust that is unit-tested without loading a library. Release 0.2 keeps
//! its saved data at schema 2 (the streak as a record); `rules::upgrade_from_1` and
//! `rules::downgrade_to_1` move 0.1's data (schema 1) up and back. The daily reward is the
//! designers' table `tables/reward.json`, installed beside the library as
//! `activity.tables/reward.json`.

mod rules;

plugin_api::export_module! {
    name: "activity",
    prefix: "10",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [rules::ALREADY_SIGNED_IN],
    schema: 2,
    migrations: [(1, rules::upgrade_from_1, rules::downgrade_to_1)],
    tables: rules::read_tables,
    commands: {
        "1001" => rules::sign_in,
    },
}
