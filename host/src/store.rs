//! Player data and sessions: the storage contract, whatever database is behind it.
//!
//! The host talks to storage only through [`Store`], so a server database for several hosts
//! can be added without touching modules or the request path. The embedded default is
//! [`sqlite::SqliteStore`].
//!
//! What every implementation guarantees: `commit` applies the player record and the module's
//! data together or not at all; module data is keyed by module, so one module never reads
//! another's; a session is valid until it expires or is ended.

pub mod sqlite;

use async_trait::async_trait;
use plugin_api::Player;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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

/// Why storage could not serve a request.
#[derive(Debug, thiserror::Error)]
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

    /// Writes out what is pending and closes; later calls fail as unavailable. Shutdown calls it
    /// once every request has finished.
    async fn close(&self) -> Result<(), StoreError>;

    /// The player record and `module`'s data for that player (`{}` if none yet).
    async fn load(&self, player_id: &str, module: &str)
        -> Result<(Player, ModuleData), StoreError>;

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

    /// Writes what a command changed, in one transaction.
    async fn commit(
        &self,
        player_id: &str,
        module: &str,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}
