//! What a module author writes against: plain Rust types with no ABI in sight.
//!
//! A command handler is `fn(&mut Ctx, Request) -> Reply`, where `Request` is the request `data`
//! as `serde_json::Value` or any `serde` type. It changes `ctx.player` and its saved data
//! (`ctx.saved()`, `ctx.save(..)`) as it likes, and returns the reply `data` or a [`Refusal`]
//! of a code the module declared.
//! The host commits the changes only if the handler returned `Ok`.

use crate::abi::{HostRef, HostServices, LogLevel};
use crate::effects::{Effects, Gift, MissingRefusal, Push, PushTo};
use crate::player::Player;
use abi_stable::std_types::RStr;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// What a command handler returns: the reply `data`, or a game-level refusal.
pub type Reply = Result<Value, Refusal>;

/// A command handler that takes its request `data` as JSON. A handler may take it as any
/// `serde` type instead (`fn(&mut Ctx, BuyRequest) -> Reply`): a request that does not fit is
/// then refused with the module's `bad_request` code, naming the field, before the handler runs.
pub type Handler = fn(&mut Ctx<'_>, Value) -> Reply;

/// A refusal a module declares: its positive code and a name (`not_enough_gold`), listed by
/// `game-host check` and the admin API so that client developers know every `ret` to expect.
///
/// ```
/// use plugin_api::RefusalCode;
/// pub const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
/// let refusal = NOT_ENOUGH_GOLD.because("50 needed, 20 owned");
/// assert_eq!((refusal.code, refusal.msg.as_str()), (1, "50 needed, 20 owned"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalCode {
    /// Positive, and unique within the module (the host refuses a library otherwise).
    pub code: i32,
    /// Lowercase words joined by `_`, unique within the module.
    pub name: &'static str,
}

impl RefusalCode {
    pub const fn new(code: i32, name: &'static str) -> Self {
        RefusalCode { code, name }
    }

    /// This refusal, with a message for the player.
    pub fn because(self, msg: impl Into<String>) -> Refusal {
        Refusal {
            code: self.code,
            msg: msg.into(),
        }
    }
}

/// The refusal of a request that does not fit a typed handler's request type, unless the
/// module declares its own (`bad_request:` in [`export_module!`](crate::export_module)).
pub const BAD_REQUEST: RefusalCode = RefusalCode::new(99, "bad_request");

/// A game-level refusal: a code the module declared and a message for the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Positive; the host turns a non-positive code into a module failure.
    pub code: i32,
    pub msg: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused ({}): {}", self.code, self.msg)
    }
}

/// Shorthand for `Err(code.because(msg))`.
pub fn refuse<T>(code: RefusalCode, msg: impl Into<String>) -> Result<T, Refusal> {
    Err(code.because(msg))
}

/// The services of the host, usable from init, commands and shutdown.
///
/// Log through this, never with `println!`: a library's stdout buffer is never freed, and the
/// host tags each line with the module's name and version.
#[derive(Clone, Copy)]
pub struct Host<'a> {
    services: &'a (dyn HostServicesExt + 'a),
}

/// The host services as plain Rust: implemented by the ABI handle and by [`TestHost`].
pub(crate) trait HostServicesExt {
    fn log(&self, level: LogLevel, message: &str);
    fn now_millis(&self) -> i64;
    fn config_json(&self) -> String;
}

impl HostServicesExt for HostRef<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        HostServices::log(self, level, RStr::from_str(message));
    }
    fn now_millis(&self) -> i64 {
        HostServices::now_millis(self)
    }
    fn config_json(&self) -> String {
        HostServices::config_json(self).into_string()
    }
}

impl<'a> Host<'a> {
    pub(crate) fn new(services: &'a (dyn HostServicesExt + 'a)) -> Self {
        Host { services }
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        self.services.log(level, message);
    }
    pub fn error(&self, message: &str) {
        self.log(LogLevel::Error, message);
    }
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message);
    }
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message);
    }

    /// The host clock in milliseconds since the Unix epoch. Use this, not `SystemTime`, so
    /// that tests and the host agree on what day it is.
    pub fn now_millis(&self) -> i64 {
        self.services.now_millis()
    }

    /// The current UTC day, counted from 1970-01-01 (day 0).
    pub fn today(&self) -> i64 {
        self.now_millis().div_euclid(86_400_000)
    }

    /// This module's config section (`[modules.<name>]` in the host config), deserialized.
    /// An absent section reads as an empty table.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, String> {
        let text = self.services.config_json();
        serde_json::from_str(&text).map_err(|e| format!("bad module config: {e}"))
    }
}

/// Everything a command handler may read and change.
///
/// Two things are called "data" on the wire, and neither is called that here: the request
/// `data` is the handler's second argument, and the module's saved data for the player is
/// reached only through [`Ctx::saved`] and [`Ctx::save`], as the module's own type.
pub struct Ctx<'a> {
    /// The player record shared by all modules.
    pub player: Player,
    /// This module's saved data for this player, at this version's schema (the glue upgrades
    /// older data and keeps the `$schema` stamp out of it); other modules never see it.
    pub(crate) saved: Map<String, Value>,
    /// Host services: log, clock, config.
    pub host: Host<'a>,
    /// The module's data tables as its reader read them, if it has any.
    tables: Option<Arc<dyn Any + Send + Sync>>,
    /// The account the player logs in with.
    account: String,
    /// Pushes and group changes, applied only if the command's turn commits.
    effects: Effects,
}

impl<'a> Ctx<'a> {
    /// The context the glue builds for one command (public for benchmarks that run a handler
    /// as the glue would).
    #[doc(hidden)]
    pub fn new(player: Player, saved: Map<String, Value>, host: Host<'a>) -> Self {
        Ctx {
            player,
            saved,
            host,
            tables: None,
            account: String::new(),
            effects: Effects::default(),
        }
    }

    /// This context for the player of `account` (the glue's, and tests').
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = account.into();
        self
    }

    /// This context with the tables the glue found for the call.
    pub(crate) fn with_read_tables(mut self, tables: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        self.tables = tables;
        self
    }

    /// This context with `tables` as the module's data tables, for unit tests of rules that
    /// read them (and benchmarks).
    pub fn with_tables<T: Any + Send + Sync>(self, tables: T) -> Self {
        self.with_read_tables(Some(Arc::new(tables)))
    }

    /// The effects recorded, taken out for the glue.
    pub(crate) fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    /// The saved data as the handler sees it, for the glue and benchmarks.
    #[doc(hidden)]
    pub fn saved_json(&self) -> &Map<String, Value> {
        &self.saved
    }
}

impl Ctx<'_> {
    /// The account the command's player logs in with (`account` of `POST /login`): the name
    /// other players know them by.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Pushes `kind` and `data` (a JSON object) to `to` if this command's turn commits, and
    /// keeps it for a player who is offline: they get it, in order, when they connect again
    /// (within the host's `push.retention_secs`).
    ///
    /// # Panics
    /// If `data` does not serialize to a JSON object.
    pub fn push<T: Serialize>(&mut self, to: PushTo, kind: &str, data: &T) {
        self.record_push(to, kind, data, true);
    }

    /// As [`Ctx::push`], but only to sockets open when the turn commits: nothing is kept (a
    /// position in a room, a typing indicator).
    pub fn push_live<T: Serialize>(&mut self, to: PushTo, kind: &str, data: &T) {
        self.record_push(to, kind, data, false);
    }

    fn record_push<T: Serialize>(&mut self, to: PushTo, kind: &str, data: &T, persistent: bool) {
        let data = match serde_json::to_value(data) {
            Ok(Value::Object(data)) => Value::Object(data),
            other => panic!("push data must serialize to a JSON object, got {other:?}"),
        };
        self.effects.pushes.push(Push {
            to,
            kind: kind.to_owned(),
            data,
            persistent,
        });
    }

    /// The command's player joins the module's group `name` (a guild, a room) when the turn
    /// commits: [`PushTo::group`] then reaches them. Groups belong to the module: another
    /// module's group of the same name is another group.
    pub fn join(&mut self, name: impl Into<String>) {
        self.effects.join.push(name.into());
    }

    /// The command's player leaves the module's group `name` when the turn commits.
    pub fn leave(&mut self, name: impl Into<String>) {
        self.effects.leave.push(name.into());
    }

    /// Gives `gold` (positive) to the player of `account`, in this command's turn: the host
    /// adds it to their record when the turn commits, both players locked, so neither a
    /// command of theirs on any host nor another gift loses it. Take it from `ctx.player.gold`
    /// yourself. The whole command is refused with `if_missing` (nothing written) when no player
    /// has that account; a gift to the command's own player fails the command (-5).
    pub fn give_gold(&mut self, account: &str, gold: i64, if_missing: Refusal) {
        self.effects.gifts.push(Gift {
            account: account.to_owned(),
            gold,
            missing: MissingRefusal {
                code: if_missing.code,
                msg: if_missing.msg,
            },
        });
    }

    /// The pushes, group changes and gifts recorded so far, for tests of a module's rules.
    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// The module's data tables, as its table reader (`tables:` in
    /// [`export_module!`](crate::export_module)) read them from `plugins/<module>.tables/`.
    /// Shared by every command of this version and these tables, read-only.
    ///
    /// # Panics
    /// If the module declares no tables, or `T` is not the type its reader returns; the command
    /// then fails with -5.
    pub fn tables<T: Any>(&self) -> &T {
        let Some(tables) = &self.tables else {
            panic!("no data tables: declare a table reader (`tables:` in export_module!)")
        };
        match tables.downcast_ref::<T>() {
            Some(tables) => tables,
            None => panic!(
                "the data tables are not a {}: ask for the type the table reader returns",
                std::any::type_name::<T>()
            ),
        }
    }

    /// This module's saved data for this player, as the module's type (`T::default()` for a
    /// player it has not saved anything for yet).
    ///
    /// # Panics
    /// If the stored data does not fit `T`; the command then fails with -5 and commits nothing.
    /// Keep `T` readable by the version before yours and the one after (docs/modules.md).
    pub fn saved<T: DeserializeOwned + Default>(&self) -> T {
        if self.saved.is_empty() {
            return T::default();
        }
        match serde_json::from_value(Value::Object(self.saved.clone())) {
            Ok(saved) => saved,
            Err(e) => panic!("the saved data does not fit its type: {e}"),
        }
    }

    /// Replaces this module's saved data for this player; the host stores it with the
    /// player record when the handler returns `Ok`.
    ///
    /// # Panics
    /// If `saved` does not serialize to a JSON object (use a struct with named fields).
    pub fn save<T: Serialize>(&mut self, saved: &T) {
        match serde_json::to_value(saved) {
            Ok(Value::Object(map)) => self.saved = map,
            other => panic!("saved data must serialize to a JSON object, got {other:?}"),
        }
    }
}

/// A host for unit tests of module rules: a settable clock, a config, and the log lines
/// written so far. No library is loaded.
///
/// ```
/// use plugin_api::{Ctx, Player, TestHost};
/// let host = TestHost::new();
/// let mut ctx = Ctx::for_test(Player::new("p1", "Alice", ""), &host);
/// ctx.player.gold += 1;
/// assert_eq!(ctx.player.gold, 1001);
/// ```
#[derive(Debug, Default)]
pub struct TestHost {
    /// What `now_millis()` answers.
    pub now_millis: std::sync::atomic::AtomicI64,
    /// What `config()` reads.
    pub config: Value,
    /// Every line logged, in order.
    pub logs: std::sync::Mutex<Vec<(LogLevel, String)>>,
}

impl TestHost {
    /// A test host at the Unix epoch with an empty config.
    pub fn new() -> Self {
        TestHost {
            config: Value::Object(Map::new()),
            ..TestHost::default()
        }
    }

    /// Moves the clock to `millis` since the Unix epoch.
    pub fn set_now_millis(&self, millis: i64) {
        self.now_millis
            .store(millis, std::sync::atomic::Ordering::SeqCst);
    }

    /// This test host as the [`Host`] that init and shutdown hooks receive, so that they can
    /// be unit-tested without a library too.
    ///
    /// ```
    /// use plugin_api::{Host, TestHost};
    /// fn init(host: Host<'_>) -> Result<(), String> {
    ///     host.info("ready");
    ///     Ok(())
    /// }
    /// let host = TestHost::new();
    /// assert_eq!(init(host.host()), Ok(()));
    /// assert_eq!(host.logs.lock().unwrap().len(), 1);
    /// ```
    pub fn host(&self) -> Host<'_> {
        Host::new(self)
    }
}

impl HostServicesExt for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs
            .lock()
            .expect("test log lock")
            .push((level, message.to_owned()));
    }
    fn now_millis(&self) -> i64 {
        self.now_millis.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn config_json(&self) -> String {
        self.config.to_string()
    }
}

impl<'a> Ctx<'a> {
    /// A context for unit tests: this player, nothing saved yet, the test host. Give it saved
    /// data with [`Ctx::save`]; read what the handler saved with [`Ctx::saved`].
    pub fn for_test(player: Player, host: &'a TestHost) -> Self {
        Ctx::new(player, Map::new(), Host::new(host))
    }
}
