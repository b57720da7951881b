//! Player data and sessions: the storage contract, whatever database is behind it.
//!
//! The host talks to storage only through [`Store`]; [`open`] picks the implementation from
//! the database URL: [`sqlite::SqliteStore`], embedded, for one host (the default), or
//! [`server::ServerStore`] on PostgreSQL or MariaDB/MySQL, shared by several hosts.
//!
//! What every implementation guarantees, and the contract suite (`tests/it/store_contract.rs`)
//! holds each of them to:
//! - a command's turn ([`Store::begin_turn`] … [`PlayerTurn::end`]) applies the player record
//!   and the module's data together or not at all;
//! - module data is keyed by module, so one module never reads another's;
//! - a session is valid until it expires or is ended;
//! - a keyed turn's write and the reply stored under its key commit together, and its read
//!   sees the key's reply (within the window) of any turn that committed before it;
//! - turns of one player never overlap, even from different hosts (the embedded store relies on
//!   this host's `player_locks`, as it is never shared; on a server store a turn's write
//!   applies only over the version of the player it read, else it reports
//!   [`StoreError::Conflict`] and is run again, locked), while turns of different players run
//!   in parallel.

pub mod fleet;
pub mod push;
pub mod server;
pub mod sole_user;
pub mod sqlite;
mod tls;
pub mod url;

pub use fleet::FleetStore;
pub use push::{PushStore, TurnEffects};
pub use sqlite::{Durability, SqliteOptions};
pub use url::{DatabaseUrl, UrlError};

use async_trait::async_trait;
use plugin_api::Player;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Opens the store that `url` names, bringing its schema up to date. `pool` applies to a
/// server database, `sqlite` to SQLite.
pub async fn open(
    url: &DatabaseUrl,
    pool: &server::PoolSettings,
    sqlite: SqliteOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path, sqlite)?),
        DatabaseUrl::Postgres(_) | DatabaseUrl::MySql(_) => {
            Arc::new(server::ServerStore::open(url, pool).await?)
        }
    })
}

/// A module's private data for one player: a JSON object.
pub type ModuleData = Map<String, Value>;

/// A session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub player_id: String,
    pub expires_at_ms: i64,
}

/// A player as an operator sees it: the record, the account and every module's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerDetails {
    pub account: String,
    pub player: Player,
    /// Each module's private data, by module name.
    pub modules: BTreeMap<String, ModuleData>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What an operator gives a player; negative amounts take away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grant {
    pub gold: i64,
    pub diamond: i64,
    /// Item id to count added (negative: removed).
    pub items: BTreeMap<String, i64>,
}

/// Who asks for an operator's change, when, and why.
#[derive(Debug, Clone)]
pub struct AuditNote {
    pub operator: String,
    pub reason: String,
    pub at_ms: i64,
}

/// One row of the audit log: an operator's change to a player, with the state before and
/// after. Rows are only ever added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub operator: String,
    /// `grant` or `revoke`.
    pub action: String,
    pub player_id: String,
    pub reason: String,
    pub before: Value,
    pub after: Value,
}

impl AuditEntry {
    /// The entry for the audit row a store has just written, under `id`.
    pub fn written(
        id: i64,
        note: &AuditNote,
        action: &str,
        player_id: &str,
        before: Value,
        after: Value,
    ) -> AuditEntry {
        AuditEntry {
            id,
            at_ms: note.at_ms,
            operator: note.operator.clone(),
            action: action.to_owned(),
            player_id: player_id.to_owned(),
            reason: note.reason.clone(),
            before,
            after,
        }
    }
}

/// Why storage could not serve a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database failed or cannot be reached; the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The player does not exist (a session outlived its player).
    #[error("no player {0}")]
    NoSuchPlayer(String),
    /// The change is not allowed (it would make a balance negative); nothing was written.
    #[error("{0}")]
    Refused(String),
    /// Stored data cannot be read back; someone must look at it.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer host.
    #[error("the database schema is version {found}, this host knows up to {known}: run a newer game-host")]
    SchemaTooNew { found: i64, known: i64 },
    /// The command's session has ended (logged out or revoked on another host) or expired.
    #[error("the session has ended")]
    SessionEnded,
    /// The turn wrote nothing: another host changed the player after the turn read it (a
    /// server store's optimistic turn), or the database broke a lock cycle by rolling the
    /// turn's transaction back. Run the turn again, from its read.
    #[error("the player changed during the turn")]
    Conflict,
}

/// How a server store's turns went in batches since it opened (`/metrics`): reads sent
/// together in one statement, writes committed together. The embedded store has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Statements that read turns, and the turns they read.
    pub read_batches: u64,
    pub reads: u64,
    /// Batches of writes that committed, and the writes in them (each applied, or not by
    /// its own checks).
    pub write_batches: u64,
    pub writes: u64,
    /// Batches of writes undone, their writes then written alone: the database refused the
    /// batch (a value out of range, a deadlock), or on MariaDB a write's checks failed.
    pub write_batches_undone: u64,
}

/// The session a command came with, for stores that check it again inside the turn.
#[derive(Debug, Clone, Copy)]
pub struct SessionCheck<'a> {
    pub token_hash: &'a str,
    pub now_ms: i64,
}

/// How a turn begins: locked or not, keyed or not ([`Store::open_turn`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnOptions<'a> {
    /// Lock the player from the turn's read to its end (a turn run again after a
    /// [`StoreError::Conflict`]; [`Store::begin_locked_turn`]).
    pub locked: bool,
    /// The command's idempotency key: look it up in the turn's read, and store the reply
    /// with the turn's write.
    pub key: Option<TurnKey<'a>>,
}

/// A keyed command's key as its turn looks it up and stores it (the `Idempotency-Key`
/// header; `crate::idempotency`). Keys are per player.
#[derive(Debug, Clone, Copy)]
pub struct TurnKey<'a> {
    pub key: &'a str,
    /// What identifies the request (sha256 of its command and data, hex).
    pub fingerprint: &'a str,
    /// A stored key created at or before this moment is expired: the read ignores it.
    pub expired_at_ms: i64,
}

/// What a keyed turn's read found stored under its key: the first request's fingerprint and
/// its reply data (JSON text as the module returned it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    pub fingerprint: String,
    pub reply: String,
}

/// A keyed command's row as its turn's write stores it: its key, its request's fingerprint,
/// its reply data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub key: String,
    pub fingerprint: String,
    pub reply: String,
}

/// One command's turn on one player: the record and the module's data as the turn read them.
/// A turn dropped instead of ended writes nothing. On a server store it holds no lock (nor a
/// connection, unless it is locked): its write applies only if no one changed the player
/// since its read ([`StoreError::Conflict`] otherwise).
pub struct PlayerTurn {
    pub player: Player,
    pub module_data: ModuleData,
    /// A keyed turn's stored reply, if its key was used within the window; `None` otherwise.
    pub stored: Option<StoredReply>,
    writer: Box<dyn TurnWriter>,
}

impl PlayerTurn {
    pub fn new(player: Player, module_data: ModuleData, writer: Box<dyn TurnWriter>) -> Self {
        PlayerTurn {
            player,
            module_data,
            stored: None,
            writer,
        }
    }

    /// The turn with what its read found under its key.
    pub fn with_stored(mut self, stored: Option<StoredReply>) -> Self {
        self.stored = stored;
        self
    }

    /// Writes what the command changed (`None`: unchanged), in one transaction, and ends the
    /// turn.
    pub async fn end(
        self,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let effects = TurnEffects::default();
        self.writer
            .end(player, module_data, &effects, None, now_ms)
            .await
    }

    /// [`PlayerTurn::end`] for a command that replied `reply` (its data, JSON text) and asked
    /// for `effects` (pushes, group changes), written in the same transaction: a keyed turn
    /// that writes stores the reply under its key. A turn that writes nothing stores nothing.
    pub async fn end_replying(
        self,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        effects: &TurnEffects,
        reply: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.writer
            .end(player, module_data, effects, Some(reply), now_ms)
            .await
    }
}

/// The store's side of a [`PlayerTurn`]. `reply`: what to store under the turn's key, if it
/// has one and writes anything.
#[async_trait]
pub trait TurnWriter: Send {
    async fn end(
        self: Box<Self>,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        effects: &TurnEffects,
        reply: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

/// The storage contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The player registered under `account`, or `new_player` after storing it (first login).
    async fn login(
        &self,
        account: &str,
        new_player: Player,
        now_ms: i64,
    ) -> Result<Player, StoreError>;

    /// Stores a session; only the token's hash is kept.
    async fn create_session(
        &self,
        token_hash: &str,
        player_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// The session of a token, if it exists and has not expired at `now_ms`.
    async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends a session. Returns whether it existed.
    async fn end_session(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// How many sessions have not expired at `now_ms`.
    async fn active_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Whether the database answers now (for `/health`).
    async fn check(&self) -> Result<(), StoreError>;

    /// Writes out what is pending and closes; later calls fail as unavailable. Shutdown calls it
    /// once every request has finished.
    async fn close(&self) -> Result<(), StoreError>;

    /// Begins a command's turn on `player_id`: its record and `module`'s data for it (`{}` if
    /// none yet). A store shared by several hosts checks `session` in the turn's read
    /// ([`StoreError::SessionEnded`]) and again in its write, so that a logout on one host
    /// holds on all of them; its [`PlayerTurn::end`] may report [`StoreError::Conflict`].
    async fn begin_turn(
        &self,
        player_id: &str,
        module: &str,
        session: SessionCheck<'_>,
    ) -> Result<PlayerTurn, StoreError> {
        self.open_turn(player_id, module, session, TurnOptions::default())
            .await
    }

    /// [`Store::begin_turn`] for a turn run again after a [`StoreError::Conflict`]: the player
    /// is locked from the turn's read to its end, so that a turn that lost the race to other
    /// hosts' turns once cannot lose it forever (they wait for it instead). A store of one
    /// host has no such race: it ignores the lock.
    async fn begin_locked_turn(
        &self,
        player_id: &str,
        module: &str,
        session: SessionCheck<'_>,
    ) -> Result<PlayerTurn, StoreError> {
        let options = TurnOptions {
            locked: true,
            key: None,
        };
        self.open_turn(player_id, module, session, options).await
    }

    /// Begins a turn as [`Store::begin_turn`] and [`Store::begin_locked_turn`] do, as
    /// `options` say. A keyed turn's read also looks its key up, in the same read (no round
    /// trip more on a server store), and gives what it found ([`PlayerTurn::stored`]); its
    /// [`PlayerTurn::end_replying`] stores the reply with the turn's write, atomically.
    async fn open_turn(
        &self,
        player_id: &str,
        module: &str,
        session: SessionCheck<'_>,
        options: TurnOptions<'_>,
    ) -> Result<PlayerTurn, StoreError>;

    /// Deletes up to `limit` stored keys created at or before `expired_at_ms`; how many it
    /// deleted. The background sweep's (`crate::idempotency::sweep`), one batch a statement.
    async fn delete_expired_keys(&self, expired_at_ms: i64, limit: u32) -> Result<u64, StoreError>;

    /// The player registered under `account`, if any, with every module's data.
    async fn find_player(&self, account: &str) -> Result<Option<PlayerDetails>, StoreError>;

    /// The player `player_id`, if it exists, with every module's data.
    async fn player_details(&self, player_id: &str) -> Result<Option<PlayerDetails>, StoreError>;

    /// Applies `grant` to the player and records it in the audit log, in one transaction;
    /// [`StoreError::Refused`] if a balance or item count would go below zero.
    async fn grant(
        &self,
        player_id: &str,
        grant: &Grant,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError>;

    /// Ends every session of the player and records it in the audit log, in one transaction.
    async fn revoke_sessions(
        &self,
        player_id: &str,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError>;

    /// The newest `limit` audit entries, of one player or of all, newest first.
    async fn audit_log(
        &self,
        player_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Up to `limit` players' saved data of `module` (JSON text as stored), in player id order,
    /// from the first id after `after` (`""`: from the first). For scans over one module's data
    /// (a swap's saved-data check): reads what is committed, locks no player, holds no
    /// transaction between pages.
    async fn module_data_page(
        &self,
        module: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// How many players have saved data of `module`.
    async fn module_data_count(&self, module: &str) -> Result<u64, StoreError>;

    /// Replaces `module`'s saved data of `player_id` with `new` if it is still `expected`
    /// (both JSON text as stored), in one statement; whether it did. Outside any turn: for
    /// rewriting stored data behind the players' backs (after a step back to an older
    /// saved-data schema), where a turn that wrote meanwhile wins.
    async fn replace_module_data(
        &self,
        player_id: &str,
        module: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// Whether this process is the database's only user (as it is from the start). During a
    /// restart the old host and its successor share the embedded database for a moment; while
    /// they do, neither may answer from what it keeps in memory, as the other may have written
    /// since. A server store is shared by design and keeps nothing: it ignores this.
    async fn set_sole_user(&self, _sole_user: bool) {}

    /// The fleet's tables: releases, what each module should run, what each host serves.
    fn fleet(&self) -> &dyn FleetStore;

    /// How turns went in batches so far (a server store's; none on the embedded one).
    fn batch_counts(&self) -> BatchCounts {
        BatchCounts::default()
    }

    /// What the host should warn its operators of at start: something about the database
    /// that serves, but slower than it could, and what to do.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Pushes, groups and accounts ([`push`]).
    fn pushes(&self) -> &dyn PushStore;
}

/// A walk over one module's saved data in player id order, a page at a time
/// ([`Store::module_data_page`]): how the saved-data check and the rewrite after a step back
/// read a module's players without holding anything between pages.
pub struct ModuleDataPages<'a> {
    store: &'a dyn Store,
    module: &'a str,
    /// The last player id read (or the start).
    after: String,
}

impl<'a> ModuleDataPages<'a> {
    /// Players read at a time.
    pub const PAGE: u32 = 256;

    /// The walk from the first player id after `start` (`""`: from the first).
    pub fn after(store: &'a dyn Store, module: &'a str, start: String) -> Self {
        ModuleDataPages {
            store,
            module,
            after: start,
        }
    }

    /// The next page of (player id, data as stored), or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let page = self
            .store
            .module_data_page(self.module, &self.after, Self::PAGE)
            .await?;
        Ok(page.last().map(|(last, _)| last.clone()).map(|last| {
            self.after = last;
            page
        }))
    }
}

/// What an operator grant leaves of `before`, or why it cannot be applied: balances and item
/// counts never go below zero. Shared by every store.
pub fn granted(before: &Player, grant: &Grant) -> Result<Player, StoreError> {
    let mut after = before.clone();
    after.gold = before.gold.saturating_add(grant.gold);
    after.diamond = before.diamond.saturating_add(grant.diamond);
    for (item, change) in &grant.items {
        let count = after
            .items
            .get(item)
            .copied()
            .unwrap_or(0)
            .saturating_add(*change);
        if count < 0 {
            return Err(StoreError::Refused(format!(
                "the player has {} of item `{item}`: cannot take {}",
                count - change,
                -change
            )));
        }
        if count == 0 {
            after.items.remove(item);
        } else {
            after.items.insert(item.clone(), count);
        }
    }
    if after.gold < 0 {
        return Err(StoreError::Refused(format!(
            "the player has {} gold: cannot take {}",
            before.gold, -grant.gold
        )));
    }
    if after.diamond < 0 {
        return Err(StoreError::Refused(format!(
            "the player has {} diamonds: cannot take {}",
            before.diamond, -grant.diamond
        )));
    }
    Ok(after)
}

/// A player's balances as an audit row records them, before and after a change.
pub fn balances(player: &Player) -> Value {
    json!({ "gold": player.gold, "diamond": player.diamond, "items": player.items })
}

/// A player's items as stored: a JSON object of counts.
pub fn items_json(player: &Player) -> String {
    serde_json::to_string(&player.items).expect("a map of integers serializes")
}

/// Stored items read back.
pub fn parse_items(player_id: &str, text: &str) -> Result<BTreeMap<String, i64>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("items of {player_id}: {e}")))
}

/// An audit row's stored `before` or `after` read back; `id` is the row's.
pub fn parse_audit_state(id: i64, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("audit row {id}: {e}")))
}

/// Stored module data read back.
pub fn parse_module_data(
    player_id: &str,
    module: &str,
    text: &str,
) -> Result<ModuleData, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("module data of {player_id} for {module}: {e}")))
}
