//! The stores' side of a command's effects: pushes (docs/PROTOCOL.md, "Pushes"), the outbox
//! every host delivers from, the modules' groups, the account names pushes are addressed by,
//! and gold given to other players.
//!
//! A command's pushes and group changes ([`TurnEffects`]) are written by its turn, in the
//! turn's transaction ([`crate::store::PlayerTurn::end_replying`]): they exist only if the turn
//! committed. Each push is one row of `pushes`, whatever its addressee (a player, or a group
//! fanned out when it is delivered). Its id is given in commit order: SQLite has one writer,
//! and the server stores take ids from a counter row that each pushing transaction locks
//! last, up to its commit. So a host that has read every push up to id N never sees a later
//! commit with a smaller id, and reading "after N" is a complete cursor ([`crate::push`]).

use super::StoreError;
use async_trait::async_trait;

/// A push, as a turn writes it: its addressee resolved to a player id, or a group of the
/// turn's module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPush {
    pub target: PushTarget,
    pub kind: String,
    /// A JSON object, as text.
    pub data: String,
    pub persistent: bool,
}

/// Who a push is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PushTarget {
    Player(String),
    /// A group of the module that pushed.
    Group(String),
}

impl PushTarget {
    /// As stored in `pushes.target_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            PushTarget::Player(_) => "player",
            PushTarget::Group(_) => "group",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            PushTarget::Player(name) | PushTarget::Group(name) => name,
        }
    }

    /// From `pushes.target_kind` and `pushes.target`.
    pub fn from_columns(kind: &str, name: String) -> Result<PushTarget, StoreError> {
        match kind {
            "player" => Ok(PushTarget::Player(name)),
            "group" => Ok(PushTarget::Group(name)),
            other => Err(StoreError::Corrupt(format!(
                "a push is addressed to a `{other}`: only player and group are known"
            ))),
        }
    }
}

/// What a turn writes beside its player's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnEffects {
    pub pushes: Vec<NewPush>,
    /// Groups of the turn's module its player joins, and leaves.
    pub join: Vec<String>,
    pub leave: Vec<String>,
    /// Gold added to other players, one entry per player, in player id order: the order in
    /// which a server store locks their rows, the turn's own among them.
    pub gifts: Vec<GoldGift>,
}

/// Gold added to another player's record by a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldGift {
    pub player_id: String,
    pub gold: i64,
}

impl TurnEffects {
    pub fn is_empty(&self) -> bool {
        self.pushes.is_empty()
            && self.join.is_empty()
            && self.leave.is_empty()
            && self.gifts.is_empty()
    }

    /// The players other than the turn's own that the turn writes.
    pub fn other_players(&self) -> impl Iterator<Item = &str> {
        self.gifts.iter().map(|gift| gift.player_id.as_str())
    }

    /// The effects as SQL sees them: each push's columns.
    pub fn push_columns(&self) -> impl Iterator<Item = (&'static str, &str, &str, &str, bool)> {
        self.pushes.iter().map(|push| {
            (
                push.target.kind(),
                push.target.name(),
                push.kind.as_str(),
                push.data.as_str(),
                push.persistent,
            )
        })
    }
}

/// A stored push, as hosts deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRow {
    pub id: i64,
    pub target: PushTarget,
    /// The module that pushed: a group push goes to that module's group.
    pub module: String,
    pub kind: String,
    pub data: String,
    pub persistent: bool,
}

/// The columns every query of pushes reads, in [`PushRow`]'s order.
pub const PUSH_COLUMNS: &str = "id, target_kind, target, module, kind, data, persistent";

/// [`PUSH_COLUMNS`] of the table named `alias` in a join (`p.id, p.target_kind, …`).
pub fn push_columns_of(alias: &str) -> String {
    PUSH_COLUMNS
        .split(", ")
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pushes, groups and accounts, on every store.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// The newest push's id, 0 when there is none: where a host starts delivering.
    async fn latest_push_id(&self) -> Result<i64, StoreError>;

    /// Pushes with an id above `after`, oldest first, at most `limit`.
    async fn pushes_after(&self, after: i64, limit: u32) -> Result<Vec<PushRow>, StoreError>;

    /// The persistent pushes for `player_id` with an id above `since` (addressed to it, or to
    /// a group it was in when the push was written): what a player who connects again has
    /// missed. The newest `limit` of them, oldest first.
    async fn backlog(
        &self,
        player_id: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<PushRow>, StoreError>;

    /// The players in `module`'s group `group`.
    async fn group_members(&self, module: &str, group: &str) -> Result<Vec<String>, StoreError>;

    /// Deletes up to `limit` pushes: persistent ones written before `persistent_before_ms`,
    /// the others before `live_before_ms`. How many it deleted.
    async fn prune_pushes(
        &self,
        persistent_before_ms: i64,
        live_before_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// The player id of `account`, if a player has it.
    async fn player_of_account(&self, account: &str) -> Result<Option<String>, StoreError>;

    /// The account of `player_id`, if the player exists.
    async fn account_of(&self, player_id: &str) -> Result<Option<String>, StoreError>;

    /// A receiver that changes whenever another host may have written pushes (PostgreSQL's
    /// `NOTIFY`); `None` where the store has none (the host then polls).
    fn push_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
