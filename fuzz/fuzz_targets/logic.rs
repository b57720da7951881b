//! `POST /logic` with any body, sent with a valid session: the reply is the one PROTOCOL.md
//! gives that body, and the player's record (read from the store) changed exactly as the reply
//! says, or not at all.
//!
//! Every input meets the same player: a new one (1000 gold, no items, not signed in today);
//! after an input that changed it, the harness writes it back through the store.

#![no_main]

use host::store::SessionCheck;
use host_fuzz::expect::{self, Outcome, Shop};
use host_fuzz::{FuzzHost, BODY_LIMIT, NOW_MS};
use libfuzzer_sys::fuzz_target;
use plugin_api::Player;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, PoisonError};

static TARGET: LazyLock<Mutex<Target>> = LazyLock::new(|| Mutex::new(Target::start()));

fuzz_target!(|body: &[u8]| {
    TARGET
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .run(body);
});

struct Target {
    host: FuzzHost,
    token: String,
    /// The player as its first login left it.
    new_player: Player,
    shop: Shop,
}

/// The player's record and the modules that keep data for it (empty data left out).
#[derive(Debug, PartialEq)]
struct Record {
    player: Player,
    modules: BTreeMap<String, Map<String, Value>>,
}

impl Target {
    fn start() -> Target {
        let mut host = FuzzHost::start();
        let login = host.post("/login", br#"{"account":"fuzzer"}"#, None);
        assert_eq!(login.ret, 0, "login: {}", login.text);
        let token = login.body["token"].as_str().expect("a token").to_owned();
        let player_id = login.body["player_id"].as_str().expect("an id").to_owned();
        let new_player = Player {
            player_id,
            name: "fuzzer".into(),
            head_img: String::new(),
            gold: 1000,
            diamond: 0,
            items: BTreeMap::new(),
        };
        let goods = host.post("/logic", br#"{"cmd":"1101"}"#, Some(&token));
        assert_eq!(goods.ret, 0, "1101: {}", goods.text);
        let shop = Shop::from_reply(goods.body["data"].clone());
        let target = Target {
            host,
            token,
            new_player,
            shop,
        };
        assert_eq!(target.record(), target.new_record());
        target
    }

    fn run(&mut self, body: &[u8]) {
        let reply = self.host.post("/logic", body, Some(&self.token));
        expect::check_reply(&reply, body, self.host.root());
        let after = self.record();
        let logic = (body.len() <= BODY_LIMIT)
            .then(|| expect::logic(body))
            .flatten();
        let Some(logic) = logic else {
            let want = if body.len() > BODY_LIMIT { -4 } else { -2 };
            assert_eq!(reply.ret, want, "{}", reply.text);
            assert!(!reply.body.contains_key("cmd"), "{}", reply.text);
            assert_eq!(
                after,
                self.new_record(),
                "a refused body changed the player"
            );
            return;
        };
        let reply_cmd = expect::reply_cmd(&logic.cmd);
        assert_eq!(
            reply.body.get("cmd"),
            Some(&json!(reply_cmd)),
            "{}",
            reply.text
        );
        match expect::command(&logic.cmd, &logic.data, &self.new_player, &self.shop) {
            Outcome::NoSuchCommand => {
                assert_eq!(reply.ret, -1, "{}", reply.text);
                assert_eq!(after, self.new_record(), "-1 changed the player");
            }
            Outcome::Refused(codes) => {
                assert!(
                    codes.contains(&reply.ret),
                    "want ret {codes:?}: {}",
                    reply.text
                );
                assert_eq!(after, self.new_record(), "a refusal changed the player");
            }
            Outcome::Done { data, player } => {
                assert_eq!(reply.ret, 0, "{}", reply.text);
                assert_eq!(reply.body.get("data"), Some(&data), "{}", reply.text);
                assert_eq!(after.player, player, "the record after {}", reply.text);
                // Only the sign-in keeps data of its own (the day and the streak).
                let keeps_data = logic.cmd == "1001";
                let modules: Vec<&String> = after.modules.keys().collect();
                let want: Vec<&str> = if keeps_data { vec!["activity"] } else { vec![] };
                assert_eq!(modules, want, "module data after {}", reply.text);
            }
        }
        if after != self.new_record() {
            self.reset(&after);
        }
    }

    fn new_record(&self) -> Record {
        Record {
            player: self.new_player.clone(),
            modules: BTreeMap::new(),
        }
    }

    /// The player's record and module data, as the store has them.
    fn record(&self) -> Record {
        let store = &self.host.state().store;
        let details = self
            .host
            .block_on(store.player_details(&self.new_player.player_id))
            .expect("the store answers")
            .expect("the player exists");
        Record {
            player: details.player,
            modules: details
                .modules
                .into_iter()
                .filter(|(_, data)| !data.is_empty())
                .collect(),
        }
    }

    /// Writes the new player back, with empty data for every module that has some, the way a
    /// command commits (one turn per module).
    fn reset(&self, after: &Record) {
        let store = &self.host.state().store;
        let token_hash = host::session::token_hash(&self.token);
        let session = SessionCheck {
            token_hash: &token_hash,
            now_ms: NOW_MS,
        };
        let mut modules: Vec<&str> = after.modules.keys().map(String::as_str).collect();
        if modules.is_empty() {
            modules.push("player");
        }
        let empty = Map::new();
        for module in modules {
            let id = &self.new_player.player_id;
            let written = self.host.block_on(async {
                let turn = store.begin_turn(id, module, session).await?;
                turn.end(Some(&self.new_player), Some(&empty), NOW_MS).await
            });
            written.expect("the store writes the player back");
        }
        assert_eq!(self.record(), self.new_record(), "the reset");
    }
}
