//! The social module (prefix `13`): players give each other gold, message each other and talk
//! in rooms, and each gift and message reaches its reader at once over their socket
//! (docs/PROTOCOL.md, "Pushes").
//!
//! This file is only the glue: it declares the module and its command table. The rules live
//! in `rules.rs`, plain Rust that is unit-tested without loading a library.

mod rules;

plugin_api::export_module! {
    name: "social",
    prefix: "13",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [
        rules::NOT_ENOUGH_GOLD,
        rules::NO_SUCH_ACCOUNT,
        rules::BAD_TEXT,
        rules::TO_YOURSELF,
        rules::NOT_IN_ROOM,
        rules::BAD_ROOM,
        rules::TOO_MANY_ROOMS,
        rules::BAD_AMOUNT,
    ],
    commands: {
        "1301" => rules::give,
        "1303" => rules::send_message,
        "1305" => rules::join_room,
        "1307" => rules::leave_room,
        "1309" => rules::say,
    },
}
