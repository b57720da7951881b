use super::*;
use plugin_api::{Player, TestHost};

/// The catalogue as the mall ships it.
fn catalogue() -> Catalogue {
    let goods = include_str!("../../tables/goods.csv");
    read_tables(&Tables::for_test("mall", &[("goods.csv", goods)])).unwrap()
}

fn ctx(player: Player, host: &TestHost) -> Ctx<'_> {
    Ctx::for_test(player, host).with_tables(catalogue())
}

fn buy_with(host: &TestHost, gold: i64, data: Value) -> (Reply, Player) {
    let mut player = Player::new("p1", "Alice", "");
    player.gold = gold;
    let mut ctx = ctx(player, host);
    let reply = buy(&mut ctx, data);
    (reply, ctx.player)
}

#[test]
fn the_list_has_at_least_three_goods_with_id_name_and_price() {
    let host = TestHost::new();
    let reply = list_goods(&mut ctx(Player::new("p", "P", ""), &host), json!({})).unwrap();
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

#[test]
fn the_shipped_table_is_the_catalogue_in_its_order() {
    let ids: Vec<String> = catalogue().goods.into_iter().map(|g| g.id).collect();
    assert_eq!(ids, ["potion", "sword", "shield"]);
}

#[test]
fn a_bad_row_of_the_table_is_named_by_line() {
    for (csv, expected) in [
        (
            "id,name,price\npotion,Potion,50\nsword,Sword,0\n",
            "goods.csv, line 3: the price of `sword` must be above 0",
        ),
        (
            "id,name,price\npotion,Potion,50\npotion,Potion,60\n",
            "goods.csv, line 3: `potion` is listed twice",
        ),
        (
            "id,name,price\npotion,,50\n",
            "goods.csv, line 2: every good needs an id and a name",
        ),
    ] {
        let refused = read_tables(&Tables::for_test("mall", &[("goods.csv", csv)])).unwrap_err();
        assert_eq!(refused.to_string(), expected);
    }
}
