//! The profile: updating the name and avatar, and reading the whole record.

use plugin_api::{refuse, Ctx, RefusalCode, Reply};
use serde_json::Value;

/// `1201`: a field of the wrong type or length.
pub const BAD_FIELD: RefusalCode = RefusalCode::new(1, "bad_field");

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest avatar URL, in characters.
pub const MAX_HEAD_IMG_CHARS: usize = 512;

/// `1201`: updates `name` and/or `head_img`; replies the whole record.
/// Refusal [`BAD_FIELD`]: a field of the wrong type or length (nothing is changed).
pub fn update_profile(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let name = match data.get("name") {
        None => None,
        Some(Value::String(name))
            if (1..=MAX_NAME_CHARS).contains(&name.trim().chars().count()) =>
        {
            Some(name.trim().to_owned())
        }
        Some(_) => {
            return refuse(
                BAD_FIELD,
                format!("`name` must be a string of 1 to {MAX_NAME_CHARS} characters"),
            )
        }
    };
    let head_img = match data.get("head_img") {
        None => None,
        Some(Value::String(url)) if url.chars().count() <= MAX_HEAD_IMG_CHARS => Some(url.clone()),
        Some(_) => {
            return refuse(
                BAD_FIELD,
                format!("`head_img` must be a string of at most {MAX_HEAD_IMG_CHARS} characters"),
            )
        }
    };
    if let Some(name) = name {
        ctx.player.name = name;
    }
    if let Some(head_img) = head_img {
        ctx.player.head_img = head_img;
    }
    record(ctx, Value::Null)
}

/// `1203`: the whole record; changes nothing.
pub fn record(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(serde_json::to_value(&ctx.player).expect("a player record serializes"))
}

#[cfg(test)]
mod tests;
