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
use serde_json::{Map, Value};

/// A module's private data for one player: a JSON object.
pub type ModuleData = Map<String, Value>;

/// A session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub player_id: String,
    pub expires_at_ms: i64,
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
