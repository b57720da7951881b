use super::*;
use plugin_api::{Player, TestHost};

const DAY_MS: i64 = 86_400_000;

/// The reward as the module ships it.
fn reward() -> Reward {
    let json = include_str!("../../tables/reward.json");
    read_tables(&plugin_api::Tables::for_test(
        "activity",
        &[("reward.json", json)],
    ))
    .unwrap()
}

#[test]
fn the_shipped_reward_is_100_gold_and_a_reward_of_nothing_is_refused() {
    assert_eq!(reward(), Reward { gold: 100 });
    let refused = read_tables(&plugin_api::Tables::for_test(
        "activity",
        &[("reward.json", r#"{"gold": 0}"#)],
    ))
    .unwrap_err();
    assert_eq!(refused.to_string(), "reward.json: `gold` must be above 0");
}

fn sign(host: &TestHost, player: Player, saved: SignIn) -> (Reply, Player, SignIn) {
    let mut ctx = plugin_api::Ctx::for_test(player, host).with_tables(reward());
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
    assert_eq!(
        data,
        SignIn {
            streak: Some(Streak {
                last_day: 10,
                days: 1
            }),
            best: 1
        }
    );
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
    let mut ctx = plugin_api::Ctx::for_test(Player::new("p", "P", ""), &host).with_tables(reward());
    assert_eq!(
        sign_in(&mut ctx, json!({})).unwrap(),
        json!({ "gold": 1100, "streak": 1 })
    );
    let saved: SignIn = ctx.saved();
    assert_eq!(
        saved.streak,
        Some(Streak {
            last_day: 10,
            days: 1
        })
    );
}

#[test]
fn a_gap_starts_a_new_run_and_keeps_the_best_one() {
    let host = TestHost::new();
    let mut player = Player::new("p", "P", "");
    let mut data = SignIn::default();
    for day in [10, 11, 12, 20, 21] {
        host.set_now_millis(day * DAY_MS);
        (_, player, data) = sign(&host, player, data);
    }
    assert_eq!(data.streak.map(|s| s.days), Some(2));
    assert_eq!(data.best, 3);
}

mod migration {
    use super::super::*;
    use proptest::prelude::*;

    /// Saved data as release 0.1 could write it: nothing yet, or a last day and a streak of
    /// at least one day.
    fn saved_by_0_1() -> impl Strategy<Value = SignInV1> {
        prop_oneof![
            Just(SignInV1::default()),
            (any::<i64>(), 1..=u32::MAX).prop_map(|(day, streak)| SignInV1 {
                last_day: Some(day),
                streak,
            }),
        ]
    }

    proptest! {
        /// What the host's check before a swap runs: up, then back down, unchanged.
        #[test]
        fn data_of_0_1_goes_up_and_back_unchanged(old in saved_by_0_1()) {
            let new = upgrade_from_1(old.clone()).unwrap();
            prop_assert_eq!(downgrade_to_1(new.clone()).unwrap(), old.clone());
            // Through JSON, as stored: the same text both ways.
            let stored = serde_json::to_value(&old).unwrap();
            let read: SignInV1 = serde_json::from_value(stored.clone()).unwrap();
            prop_assert_eq!(serde_json::to_value(downgrade_to_1(upgrade_from_1(read).unwrap()).unwrap()).unwrap(), stored);
            // The current run survives the upgrade.
            prop_assert_eq!(new.streak.map(|s| (s.last_day, s.days)), old.last_day.map(|d| (d, old.streak)));
        }

        /// What a rollback runs: any schema 2 data goes down, keeping the current run; going
        /// up again loses only the best run.
        #[test]
        fn data_of_0_2_goes_down_keeping_the_current_run(
            streak in proptest::option::of((any::<i64>(), 1..=u32::MAX)),
            best in any::<u32>(),
        ) {
            let new = SignIn {
                streak: streak.map(|(last_day, days)| Streak { last_day, days }),
                best,
            };
            let old = downgrade_to_1(new.clone()).unwrap();
            let again = upgrade_from_1(old).unwrap();
            prop_assert_eq!(again.streak, new.streak);
        }
    }

    #[test]
    fn a_streak_without_a_day_is_refused_by_name() {
        let odd = SignInV1 {
            last_day: None,
            streak: 4,
        };
        let why = upgrade_from_1(odd).unwrap_err();
        assert!(
            why.contains("a streak of 4 days without a last sign-in day"),
            "{why}"
        );
    }
}
