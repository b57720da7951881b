//! Test-only module `leaky` (prefix 96): breaks plugin-api's rule against thread-locals with
//! destructors, so that the library pins itself in memory and the host must report that its
//! retired version did not leave.

use plugin_api::{Ctx, Reply};
use serde_json::{json, Value};
use std::cell::RefCell;

plugin_api::export_module! {
    name: "leaky",
    prefix: "96",
    version: env!("CARGO_PKG_VERSION"),
    commands: { "9601" => remember },
}

thread_local! {
    /// A `String` has a destructor: the first touch registers it with the C runtime, which
    /// then keeps this library loaded while the thread lives.
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

/// 9601: stores the request in a thread-local and replies how long it was.
fn remember(_ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let text = data.to_string();
    let len = text.len();
    LAST.with(|last| *last.borrow_mut() = text);
    Ok(json!({ "len": len }))
}
