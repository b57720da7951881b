//! Test-only module `badprefix`: declares the prefix `1x`, which is not two digits.

use plugin_api::{Ctx, Reply};
use serde_json::{json, Value};

plugin_api::export_module! {
    name: "badprefix",
    prefix: "1x",
    version: env!("CARGO_PKG_VERSION"),
    commands: { "1901" => nothing },
}

fn nothing(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({}))
}
