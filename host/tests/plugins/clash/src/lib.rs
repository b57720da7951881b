//! Test-only module `clash`: takes prefix 11, which the mall serves, so one must be refused.

use plugin_api::{Ctx, Reply};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "clash",
    prefix: "11",
    version: env!("CARGO_PKG_VERSION"),
    commands: { "1197" => nothing },
}

fn nothing(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "from": "clash" }))
}
