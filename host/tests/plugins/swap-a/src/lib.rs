//! Test-only module `swap` (prefix 95), build "a": the same module as the other build
//! but for its answer, so tests can tell which version served each command.

/// What this build answers.
const BUILD: &str = "a";

#[path = "../../swap-common/commands.rs"]
mod commands;

plugin_api::export_module! {
    name: "swap",
    prefix: "95",
    version: BUILD,
    commands: {
        "9501" => commands::which,
        "9503" => commands::slow,
    },
}
