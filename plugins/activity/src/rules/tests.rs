use super::*;
use plugin_api::{Player, TestHost};

const DAY_MS: i64 = 86_400_000;

fn sign(host: &TestHost, player: Player, saved: SignIn) -> (Reply, Player, SignIn) {
    let mut ctx = plugin_api::Ctx::for_test(player, host);
    ctx.save(&saved);
    let reply = sign_in(&mut ctx, json!({}));
    let saved = ctx.saved();
    (reply, ctx.player, saved)
}

#[test]
fn first_sign_in_grants_the_reward_with_a_streak_of_one() {
    let host = TestHost::new();
    host.set_now_millis(10 * DAY_MS + 5);
    let (reply, player, data) = sign(&host, Player::new("p", "P", ""), Default::default());
    assert_eq!(reply.unwrap(), json!({ "gold": 1100, "streak": 1 }));
    assert_eq!(player.gold, 1100);
    assert_eq!(data.last_day, Some(10));
}

#[test]
fn the_same_day_is_refused_and_changes_nothing() {
    let host = TestHost::new();
    host.set_now_millis(10 * DAY_MS);
    let (_, player, data) = sign(&host, Player::new("p", "P", ""), Default::default());
    host.set_now_millis(11 * DAY_MS - 1); // 23:59:59.999 UTC, still day 10
    let (reply, again, data_again) = sign(&host, player.clone(), data.clone());
    assert_eq!(reply.unwrap_err().code, 1);
    assert_eq!((again, data_again), (player, data));
}

#[test]
fn the_next_day_extends_the_streak_and_a_gap_resets_it() {
    let host = TestHost::new();
    host.set_now_millis(10 * DAY_MS);
    let (_, player, data) = sign(&host, Player::new("p", "P", ""), Default::default());
    host.set_now_millis(11 * DAY_MS); // midnight UTC: a new day
    let (reply, player, data) = sign(&host, player, data);
    assert_eq!(reply.unwrap(), json!({ "gold": 1200, "streak": 2 }));
    host.set_now_millis(13 * DAY_MS);
    let (reply, _, _) = sign(&host, player, data);
    assert_eq!(reply.unwrap(), json!({ "gold": 1300, "streak": 1 }));
}

#[test]
fn a_player_with_nothing_saved_signs_in_for_the_first_time() {
    let host = TestHost::new();
    host.set_now_millis(10 * DAY_MS);
    // Nothing saved at all (a new player), not an empty record saved.
    let mut ctx = plugin_api::Ctx::for_test(Player::new("p", "P", ""), &host);
    assert_eq!(
        sign_in(&mut ctx, json!({})).unwrap(),
        json!({ "gold": 1100, "streak": 1 })
    );
    let saved: SignIn = ctx.saved();
    assert_eq!((saved.last_day, saved.streak), (Some(10), 1));
}
