//! The activity module (prefix `10`): the daily sign-in.
//!
//! This file is only the glue: it declares the module and its command table. The rules live
//! in `rules.rs`, plain Rust that is unit-tested without loading a library.

mod rules;

plugin_api::export_module! {
    name: "activity",
    prefix: "10",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [rules::ALREADY_SIGNED_IN],
    commands: {
        "1001" => rules::sign_in,
    },
}
