use super::*;
use plugin_api::{Player, TestHost};

fn buy_with(host: &TestHost, gold: i64, data: Value) -> (Reply, Player) {
    let mut player = Player::new("p1", "Alice", "");
    player.gold = gold;
    let mut ctx = Ctx::for_test(player, host);
    let reply = buy(&mut ctx, data);
    (reply, ctx.player)
}

#[test]
fn the_list_has_at_least_three_goods_with_id_name_and_price() {
    let host = TestHost::new();
    let reply = list_goods(
        &mut Ctx::for_test(Player::new("p", "P", ""), &host),
        json!({}),
    )
    .unwrap();
    let goods = reply["goods"].as_array().unwrap();
    assert!(goods.len() >= 3);
    for good in goods {
        assert!(
            good["id"].is_string() && good["name"].is_string() && good["price"].as_i64() > Some(0),
            "{good}"
        );
    }
}

#[test]
fn buying_takes_price_times_count_and_adds_the_items() {
    let host = TestHost::new();
    let (reply, player) = buy_with(&host, 1000, json!({ "id": "shield", "count": 3 }));
    assert_eq!(
        reply.unwrap(),
        json!({ "gold": 400, "items": { "shield": 3 } })
    );
    assert_eq!(player.gold, 400);
    assert_eq!(player.items["shield"], 3);
}

#[test]
fn buying_everything_you_own_is_allowed() {
    let host = TestHost::new();
    let (reply, player) = buy_with(&host, 300, json!({ "id": "sword", "count": 1 }));
    assert!(reply.is_ok());
    assert_eq!(player.gold, 0);
}

#[test]
fn not_enough_gold_is_refusal_1_and_changes_nothing() {
    let host = TestHost::new();
    let (reply, player) = buy_with(&host, 299, json!({ "id": "sword", "count": 1 }));
    assert_eq!(reply.unwrap_err().code, 1);
    assert_eq!((player.gold, player.items.len()), (299, 0));
}

#[test]
fn an_unknown_good_is_refusal_2() {
    let host = TestHost::new();
    for id in [json!("dragon"), json!(7), json!(null)] {
        let (reply, player) = buy_with(&host, 1000, json!({ "id": id, "count": 1 }));
        assert_eq!(reply.unwrap_err().code, 2, "{id}");
        assert_eq!(player.gold, 1000);
    }
}

#[test]
fn a_bad_count_is_refusal_3() {
    let host = TestHost::new();
    for count in [
        json!(0),
        json!(100),
        json!(-1),
        json!(1.5),
        json!("2"),
        json!(null),
    ] {
        let (reply, player) = buy_with(&host, 100_000, json!({ "id": "potion", "count": count }));
        assert_eq!(reply.unwrap_err().code, 3, "{count}");
        assert_eq!(player.gold, 100_000);
    }
    let (reply, _) = buy_with(&host, 1000, json!({ "id": "potion" }));
    assert_eq!(reply.unwrap_err().code, 3, "missing count");
}
