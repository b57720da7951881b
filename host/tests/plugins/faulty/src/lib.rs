//! Test-only module `faulty` (prefix 90): every way a module can misbehave at run time, so
//! that tests can show the host survives each one. Its init reads `[modules.faulty] init`:
//! `"fail"` or `"panic"` refuse the load; `"hang"` waits until the file `gate` exists.

use plugin_api::{refuse, Ctx, Host, RefusalCode, Reply};
use serde::Deserialize;
use serde_json::{json, Map, Value};

plugin_api::export_module! {
    name: "faulty",
    prefix: "90",
    version: env!("CARGO_PKG_VERSION"),
    refusals: [REFUSED_AFTER_CHANGE],
    bad_request: REQUEST_DOES_NOT_FIT,
    commands: {
        "9001" => echo,
        "9003" => panic,
        "9005" => negative_gold,
        "9007" => sleep,
        "9009" => refuse_after_change,
        "9011" => keep_secret,
        "9013" => record,
        "9015" => wait_for_file,
        "9017" => big_reply,
        "9019" => give,
        "9021" => refuse_undeclared,
    },
    init: init,
    shutdown: shutdown,
}

fn init(host: Host<'_>) -> Result<(), String> {
    let config: Value = host.config()?;
    match config["init"].as_str() {
        Some("fail") => Err("init refused on purpose by config".into()),
        Some("panic") => panic!("init panicked on purpose"),
        Some("hang") => {
            // Until the file `gate` exists (an init stuck on a lock or a socket), at most a minute.
            let gate = std::path::PathBuf::from(config["gate"].as_str().unwrap_or_default());
            for _ in 0..6000 {
                if gate.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn shutdown(host: Host<'_>) {
    host.info("faulty shutting down");
}

/// 9001: replies the request data.
fn echo(_ctx: &mut Ctx<'_>, data: Value) -> Reply {
    Ok(json!({ "echo": data }))
}

/// 9003: panics.
fn panic(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    panic!("boom on purpose")
}

/// 9009's refusal.
const REFUSED_AFTER_CHANGE: RefusalCode = RefusalCode::new(7, "refused_after_change");
/// The refusal of a request that does not fit 9019's type.
const REQUEST_DOES_NOT_FIT: RefusalCode = RefusalCode::new(8, "request_does_not_fit");

/// 9019's request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Give {
    gold: u32,
    note: Option<String>,
}

/// 9019: a typed request: adds `gold` to the player's gold; replies the note.
fn give(ctx: &mut Ctx<'_>, request: Give) -> Reply {
    ctx.player.gold += i64::from(request.gold);
    Ok(json!({ "gold": ctx.player.gold, "note": request.note }))
}

/// 9021: refuses with a code the module does not declare.
fn refuse_undeclared(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    refuse(
        RefusalCode::new(9, "undeclared"),
        "a code nobody was told about",
    )
}

/// 9005: returns an invalid record (negative gold); the host must refuse to store it.
fn negative_gold(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    ctx.player.gold = -5;
    Ok(json!({}))
}

/// 9007: sleeps `data.ms` milliseconds (a slow or hung module).
fn sleep(_ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let ms = data["ms"].as_u64().unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(json!({ "slept": ms }))
}

/// 9009: changes the record, then refuses; the host must commit nothing.
fn refuse_after_change(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    ctx.player.gold += 1;
    refuse(REFUSED_AFTER_CHANGE, "refused after changing gold")
}

/// 9011: stores `data.value` in its private data; replies what was stored before.
fn keep_secret(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let mut saved: Map<String, Value> = ctx.saved();
    let before = Value::Object(saved.clone());
    saved.insert("secret".into(), data["value"].clone());
    ctx.save(&saved);
    Ok(json!({ "module_data": before }))
}

/// 9013: replies the player record as this module sees it.
fn record(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(serde_json::to_value(&ctx.player).expect("a player record serializes"))
}

/// 9015: hangs until the file `data.path` exists (a module stuck on a lock or a socket), for
/// at most a minute.
fn wait_for_file(_ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let path = std::path::PathBuf::from(data["path"].as_str().unwrap_or_default());
    for _ in 0..6000 {
        if path.exists() {
            return Ok(json!({ "waited": true }));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(json!({ "waited": false }))
}

/// 9017: adds 1 gold, then replies `data.bytes` bytes of text (a runaway reply); over the
/// host's limit, nothing may be committed.
fn big_reply(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    ctx.player.gold += 1;
    let bytes = data["bytes"].as_u64().unwrap_or(0) as usize;
    Ok(json!({ "blob": "x".repeat(bytes) }))
}
