//! How the embedded store is opened: what a commit survives, and how many players it keeps
//! in memory.

/// What a committed transaction survives: SQLite's `synchronous` setting in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous = NORMAL`: a killed process loses nothing; a power loss or OS crash may
    /// lose the last commits, each one whole.
    #[default]
    Normal,
    /// `synchronous = FULL`: a power loss or OS crash loses nothing either; a sync per commit.
    Full,
}

impl Durability {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// How the embedded store runs: `store.sqlite_synchronous` and `store.sqlite_cache_players`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Players whose record and module data are kept in memory at most; 0 keeps none.
    pub cache_players: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Normal,
            cache_players: DEFAULT_CACHE_PLAYERS,
        }
    }
}

/// `store.sqlite_cache_players` unless set: a few hundred bytes each with the demo modules
/// (the record and each module's data), some tens of MB at most.
pub const DEFAULT_CACHE_PLAYERS: usize = 100_000;
