//! A command's turn on the embedded store: the player's record and module data read together,
//! and the turn's writes sent to the database thread as one job.
//!
//! A keyed command (`Idempotency-Key`) reads its key in the same read transaction, always
//! from the file (the player cache holds no keys), and its reply is written in the same
//! savepoint as its record and data (`db_thread.rs`): they commit together.

use super::db_thread::{Job, TurnWrite};
use super::{db_error, SqliteStore};
use crate::store::{
    parse_items, parse_module_data, KeyRow, ModuleData, StoreError, StoredReply, TurnEffects,
    TurnKey, TurnWriter,
};
use async_trait::async_trait;
use plugin_api::Player;
use rusqlite::{params, Connection, OptionalExtension};

/// The record and `module`'s data of a player, and what is stored under `key` if the turn is
/// keyed, read in one transaction: they are of the same moment, and the file locks are taken
/// once, not once per statement.
pub(super) fn load(
    conn: &mut Connection,
    player_id: &str,
    module: &str,
    key: Option<&OwnedKey>,
) -> Result<(Player, ModuleData, Option<StoredReply>), StoreError> {
    let tx = conn.transaction().map_err(db_error)?;
    let player = read_player(&tx, player_id)?;
    let data: Option<String> = tx
        .prepare_cached("SELECT data FROM module_data WHERE player_id = ?1 AND module = ?2")
        .and_then(|mut select| {
            select
                .query_row(params![player_id, module], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)?;
    let data = match data {
        None => ModuleData::new(),
        Some(text) => parse_module_data(player_id, module, &text)?,
    };
    let stored = match key {
        Some(key) => stored_reply(&tx, player_id, key)?,
        None => None,
    };
    tx.finish().map_err(db_error)?;
    Ok((player, data, stored))
}

/// A keyed turn's key, owned: it travels to the database thread.
#[derive(Debug, Clone)]
pub(super) struct OwnedKey {
    pub key: String,
    pub fingerprint: String,
    pub expired_at_ms: i64,
}

impl From<TurnKey<'_>> for OwnedKey {
    fn from(key: TurnKey<'_>) -> Self {
        OwnedKey {
            key: key.key.to_owned(),
            fingerprint: key.fingerprint.to_owned(),
            expired_at_ms: key.expired_at_ms,
        }
    }
}

/// What is stored under `key` for the player, unless it has expired.
fn stored_reply(
    conn: &Connection,
    player_id: &str,
    key: &OwnedKey,
) -> Result<Option<StoredReply>, StoreError> {
    conn.prepare_cached(
        "SELECT fingerprint, reply FROM idempotency_keys \
         WHERE player_id = ?1 AND idem_key = ?2 AND created_at > ?3",
    )
    .and_then(|mut select| {
        select
            .query_row(params![player_id, key.key, key.expired_at_ms], |row| {
                Ok(StoredReply {
                    fingerprint: row.get(0)?,
                    reply: row.get(1)?,
                })
            })
            .optional()
    })
    .map_err(db_error)
}

/// The end of a command's turn on the embedded store: its writes, as one job.
pub(super) struct SqliteTurn {
    pub(super) store: SqliteStore,
    pub(super) player_id: String,
    pub(super) module: String,
    /// A keyed turn's key, whose reply is stored with the write.
    pub(super) key: Option<OwnedKey>,
}

#[async_trait]
impl TurnWriter for SqliteTurn {
    async fn end(
        self: Box<Self>,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        effects: &TurnEffects,
        reply: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // A turn that changes nothing stores nothing, its key's reply included.
        if player.is_none() && module_data.is_none() && effects.is_empty() {
            return Ok(());
        }
        let SqliteTurn {
            store,
            player_id,
            module,
            key,
        } = *self;
        let (done, committed) = tokio::sync::oneshot::channel();
        // Should this request be dropped before the commit, the player's next turn must not
        // read what the cache held before it.
        let pending = match &store.cache {
            Some(cache) => std::iter::once(player_id.as_str())
                .chain(effects.other_players())
                .map(|player| cache.write_pending(player))
                .collect(),
            None => Vec::new(),
        };
        let write = TurnWrite {
            player_id,
            module,
            player: player.cloned(),
            module_data: module_data.map(|data| {
                // A map of JSON values with string keys: serializing it cannot fail.
                let text = serde_json::to_string(data).expect("module data serializes");
                (data.clone(), text)
            }),
            effects: effects.clone(),
            key: key.zip(reply).map(|(key, reply)| KeyRow {
                key: key.key,
                fingerprint: key.fingerprint,
                reply: reply.to_owned(),
            }),
            now_ms,
            done,
            pending,
        };
        store.send(Job::Write(Box::new(write)), committed).await
    }
}

pub(super) fn read_player(conn: &Connection, player_id: &str) -> Result<Player, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT name, head_img, gold, diamond, items FROM players WHERE player_id = ?1",
        )
        .and_then(|mut select| {
            select
                .query_row([player_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                })
                .optional()
        })
        .map_err(db_error)?;
    let (name, head_img, gold, diamond, items) =
        row.ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
    let items = parse_items(player_id, &items)?;
    Ok(Player {
        player_id: player_id.to_owned(),
        name,
        head_img,
        gold,
        diamond,
        items,
    })
}
