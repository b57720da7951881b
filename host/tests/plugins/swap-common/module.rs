// The module `swap` as both test builds declare it; each build's lib.rs sets `BUILD` and
// includes this file, so that the two differ in nothing but their answer.

plugin_api::export_module! {
    name: "swap",
    prefix: "95",
    version: BUILD,
    commands: {
        "9501" => which,
        "9503" => slow,
        "9505" => fragile,
    },
}

/// 9501: which build answers.
fn which(_ctx: &mut plugin_api::Ctx<'_>, _data: serde_json::Value) -> plugin_api::Reply {
    Ok(serde_json::json!({ "build": BUILD }))
}

/// 9503: sleeps `data.ms` milliseconds, then says which build answers.
fn slow(_ctx: &mut plugin_api::Ctx<'_>, data: serde_json::Value) -> plugin_api::Reply {
    let ms = data["ms"].as_u64().unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(serde_json::json!({ "build": BUILD, "slept": ms }))
}

/// 9505: build "b" panics (a release that breaks one command, for the fleet's safety net);
/// build "a" answers.
fn fragile(_ctx: &mut plugin_api::Ctx<'_>, _data: serde_json::Value) -> plugin_api::Reply {
    if BUILD == "b" {
        panic!("build b breaks 9505 on purpose");
    }
    Ok(serde_json::json!({ "build": BUILD }))
}
