//! The player module (prefix `12`): the player's own profile and record.
//!
//! This file is only the glue: it declares the module and its command table. The rules live
//! in `rules.rs`, plain Rust that is unit-tested without loading a library.

mod rules;

plugin_api::export_module! {
    name: "player",
    prefix: "12",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [rules::BAD_FIELD],
    commands: {
        "1201" => rules::update_profile,
        "1203" => rules::record,
    },
}
