//! The commands of test module `swap`, shared by its two builds.

use plugin_api::{Ctx, Reply};
use serde_json::{json, Value};

/// 9501: which build answers.
pub fn which(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "build": crate::BUILD }))
}

/// 9503: sleeps `data.ms` milliseconds, then says which build answers.
pub fn slow(_ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let ms = data["ms"].as_u64().unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(json!({ "build": crate::BUILD, "slept": ms }))
}
