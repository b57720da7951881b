use super::*;
use plugin_api::effects::{Push, Target};
use plugin_api::{Player, TestHost};

fn ctx(host: &TestHost) -> Ctx<'_> {
    Ctx::for_test(Player::new("p1", "Alice", ""), host).with_account("alice")
}

#[test]
fn a_message_is_a_persistent_push_to_the_account_naming_the_sender() {
    let host = TestHost::new();
    let mut ctx = ctx(&host);
    let message = Message {
        to: "bob".into(),
        text: "  hi there ".into(),
    };
    assert_eq!(send_message(&mut ctx, message), Ok(json!({ "to": "bob" })));
    let [Push {
        to,
        kind,
        data,
        persistent,
    }] = ctx.effects().pushes.as_slice()
    else {
        panic!("one push: {:?}", ctx.effects())
    };
    assert_eq!(to.target, Target::Account("bob".into()));
    assert_eq!(
        to.missing.as_ref().map(|m| m.code),
        Some(NO_SUCH_ACCOUNT.code)
    );
    assert_eq!(kind, "message");
    assert_eq!(
        data,
        &json!({ "from": "alice", "name": "Alice", "text": "hi there" })
    );
    assert!(persistent);
}

#[test]
fn a_bad_message_is_refused_and_pushes_nothing() {
    let host = TestHost::new();
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    for (to, text, code) in [
        ("bob", "  ", BAD_TEXT),
        ("bob", long.as_str(), BAD_TEXT),
        ("alice", "hi", TO_YOURSELF),
    ] {
        let mut ctx = ctx(&host);
        let message = Message {
            to: to.into(),
            text: text.into(),
        };
        assert_eq!(send_message(&mut ctx, message).unwrap_err().code, code.code);
    }
}

#[test]
fn rooms_are_joined_left_and_spoken_in() {
    let host = TestHost::new();
    let mut ctx = ctx(&host);
    let room = |name: &str| Room { room: name.into() };
    let say_in = |name: &str| Say {
        room: name.into(),
        text: "hello".into(),
    };
    assert_eq!(
        say(&mut ctx, say_in("lobby")).unwrap_err().code,
        NOT_IN_ROOM.code
    );
    assert!(join_room(&mut ctx, room("lobby")).is_ok());
    assert_eq!(ctx.effects().join, ["room:lobby"]);
    assert!(say(&mut ctx, say_in("lobby")).is_ok());
    let spoken = ctx.effects().pushes.last().expect("a push");
    assert_eq!(spoken.to, PushTo::group("room:lobby"));
    assert!(!spoken.persistent);
    assert_eq!(spoken.kind, "say");
    assert!(leave_room(&mut ctx, room("lobby")).is_ok());
    assert_eq!(ctx.effects().leave, ["room:lobby"]);
    assert_eq!(
        leave_room(&mut ctx, room("lobby")).unwrap_err().code,
        NOT_IN_ROOM.code
    );
    assert_eq!(
        join_room(&mut ctx, room("no spaces")).unwrap_err().code,
        BAD_ROOM.code
    );
    for n in 0..MAX_ROOMS {
        assert!(join_room(&mut ctx, room(&format!("r{n}"))).is_ok());
    }
    assert_eq!(
        join_room(&mut ctx, room("one-more")).unwrap_err().code,
        TOO_MANY_ROOMS.code
    );
}

#[test]
fn a_gift_leaves_the_giver_and_is_given_and_pushed_to_the_account() {
    let host = TestHost::new();
    let mut ctx = ctx(&host);
    let gift = |to: &str, gold| Gift {
        to: to.into(),
        gold,
    };
    assert_eq!(
        give(&mut ctx, gift("bob", 300)),
        Ok(json!({ "to": "bob", "gold": 700 }))
    );
    assert_eq!(ctx.player.gold, 700);
    let effects = ctx.effects();
    assert_eq!(effects.gifts.len(), 1);
    assert_eq!(
        (effects.gifts[0].account.as_str(), effects.gifts[0].gold),
        ("bob", 300)
    );
    assert_eq!(effects.gifts[0].missing.code, NO_SUCH_ACCOUNT.code);
    assert_eq!(effects.pushes[0].kind, "gift");
    assert_eq!(
        effects.pushes[0].data,
        json!({ "from": "alice", "name": "Alice", "gold": 300 })
    );
    for (to, gold, code) in [
        ("bob", 701, NOT_ENOUGH_GOLD),
        ("bob", 0, BAD_AMOUNT),
        ("bob", MAX_GIFT + 1, BAD_AMOUNT),
        ("alice", 1, TO_YOURSELF),
    ] {
        let mut ctx = self::ctx(&host);
        ctx.player.gold = 700;
        assert_eq!(
            give(&mut ctx, gift(to, gold)).unwrap_err().code,
            code.code,
            "{to} {gold}"
        );
    }
}
