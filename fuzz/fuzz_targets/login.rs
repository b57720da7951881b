//! `POST /login` with any body: the reply is the one PROTOCOL.md gives that body; a login
//! opens a session for the account's player (created on its first login, the same one after),
//! whose token the cookie carries and which `POST /logout` accepts and ends.

#![no_main]

use host_fuzz::expect::{self, Login};
use host_fuzz::{FuzzHost, BODY_LIMIT};
use libfuzzer_sys::fuzz_target;
use plugin_api::Player;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, PoisonError};

static HOST: LazyLock<Mutex<FuzzHost>> = LazyLock::new(|| Mutex::new(FuzzHost::start()));

fuzz_target!(|body: &[u8]| {
    let mut host = HOST.lock().unwrap_or_else(PoisonError::into_inner);
    run(&mut host, body);
});

fn run(host: &mut FuzzHost, body: &[u8]) {
    let login = (body.len() <= BODY_LIMIT)
        .then(|| expect::login(body))
        .flatten();
    // Who the account was before this login, if anyone.
    let before = login.as_ref().map(|login| {
        host.block_on(host.state().store.find_player(&login.account))
            .expect("the store answers")
    });
    let reply = host.post("/login", body, None);
    expect::check_reply(&reply, body, host.root());
    let (Some(login), Some(before)) = (login, before) else {
        let want = if body.len() > BODY_LIMIT { -4 } else { -2 };
        assert_eq!(reply.ret, want, "{}", reply.text);
        assert!(!reply.body.contains_key("token"), "{}", reply.text);
        assert!(!reply.headers.contains_key("set-cookie"), "{}", reply.text);
        return;
    };
    assert_eq!(reply.ret, 0, "{}", reply.text);
    let player_id = reply.body["player_id"].as_str().expect("a player_id");
    assert!(
        player_id.len() == 32
            && player_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "player_id is not 32 lowercase hex digits: {}",
        reply.text
    );
    let token = reply.body["token"].as_str().expect("a token").to_owned();
    assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric()));
    let cookie = reply.headers.get("set-cookie").expect("a cookie");
    assert_eq!(
        cookie.as_bytes(),
        format!("sid={token}; Path=/; HttpOnly; SameSite=Lax").as_bytes()
    );
    check_player(host, &login, before, player_id);
    let logout = host.post("/logout", b"", Some(&token));
    assert_eq!(
        (logout.status, logout.ret),
        (200, 0),
        "logout: {}",
        logout.text
    );
}

/// The account's player: the one it had, unchanged, or a new one as PROTOCOL.md describes.
fn check_player(
    host: &FuzzHost,
    login: &Login,
    before: Option<host::store::PlayerDetails>,
    player_id: &str,
) {
    let details = host
        .block_on(host.state().store.player_details(player_id))
        .expect("the store answers")
        .expect("the player exists");
    assert_eq!(details.account, login.account);
    match before {
        Some(before) => assert_eq!(details.player, before.player, "a login changed the player"),
        None => assert_eq!(
            details.player,
            Player {
                player_id: player_id.to_owned(),
                name: login.name.clone().unwrap_or_else(|| login.account.clone()),
                head_img: login.head_img.clone().unwrap_or_default(),
                gold: 1000,
                diamond: 0,
                items: BTreeMap::new(),
            }
        ),
    }
}
