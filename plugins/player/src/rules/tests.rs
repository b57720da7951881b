use super::*;
use plugin_api::{Player, TestHost};
use serde_json::json;

fn ctx(host: &TestHost) -> Ctx<'_> {
    Ctx::for_test(Player::new("p1", "Alice", "https://img/a.png"), host)
}

#[test]
fn record_replies_the_whole_record_and_changes_nothing() {
    let host = TestHost::new();
    let mut ctx = ctx(&host);
    let before = ctx.player.clone();
    let reply = record(&mut ctx, json!({})).unwrap();
    assert_eq!(
        reply,
        json!({ "player_id": "p1", "name": "Alice", "head_img": "https://img/a.png", "gold": 1000, "diamond": 0, "items": {} })
    );
    assert_eq!(ctx.player, before);
}

#[test]
fn update_changes_only_the_fields_sent() {
    let host = TestHost::new();
    let mut ctx = ctx(&host);
    let reply = update_profile(&mut ctx, json!({ "name": "  Bob " })).unwrap();
    assert_eq!(reply["name"], "Bob");
    assert_eq!(reply["head_img"], "https://img/a.png");
    let reply = update_profile(&mut ctx, json!({ "head_img": "https://img/b.png" })).unwrap();
    assert_eq!(
        (reply["name"].as_str(), reply["head_img"].as_str()),
        (Some("Bob"), Some("https://img/b.png"))
    );
    assert_eq!(ctx.player.name, "Bob");
}

#[test]
fn bad_fields_are_refused_and_change_nothing() {
    let host = TestHost::new();
    let long_name = "x".repeat(MAX_NAME_CHARS + 1);
    let long_url = "u".repeat(MAX_HEAD_IMG_CHARS + 1);
    for data in [
        json!({ "name": 5 }),
        json!({ "name": "   " }),
        json!({ "name": long_name }),
        json!({ "head_img": [] }),
        json!({ "head_img": long_url }),
        json!({ "name": "Fine", "head_img": false }),
    ] {
        let mut ctx = ctx(&host);
        let before = ctx.player.clone();
        assert_eq!(
            update_profile(&mut ctx, data.clone()).unwrap_err().code,
            1,
            "{data}"
        );
        assert_eq!(ctx.player, before, "{data}");
    }
}
