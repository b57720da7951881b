//! Test-only module `badnumber`: declares command `9799`, whose reply `9800` would leave its
//! prefix `97` (the numbering rule of docs/modules.md).

use plugin_api::{Ctx, Reply};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "badnumber",
    prefix: "97",
    version: env!("CARGO_PKG_VERSION"),
    commands: { "9701" => nothing, "9799" => nothing },
}

fn nothing(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({}))
}
