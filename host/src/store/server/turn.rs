//! A command's turn on a server store: one read, the module's call, then at most one write
//! that applies only if nothing changed the player meanwhile (an optimistic turn).
//!
//! Hosts share players, so a turn must keep out the other hosts' turns on the same player. It
//! does so without a lock held across the module's call: it reads the record's `version` with
//! everything else ([`Sql::turn_read`], one statement, one snapshot), and its write bumps the
//! version only where it is still the one read, and only while the session holds
//! ([`Sql::turn_write`], [`Sql::turn_write_with_data`]). A write that finds neither applies
//! nothing and reports [`StoreError::Conflict`]: the caller runs the turn again from its read
//! (a module's command is a function of the turn's state, so running it again is safe).
//! Every other writer of a player bumps the version too (an operator's grant), and a logout
//! or revocation deletes the session the write checks, so it holds on every host.
//!
//! Round trips: a turn that changes nothing costs one statement; one that writes costs two
//! (on MariaDB, a player's first write of a module's data costs a short transaction instead).
//! The turn leases one connection for its whole length.

use super::pool::{Bound, Lease};
use super::rows::{db_error, int, optional_text, read_player};
use super::sql::Sql;
use super::Backend;
use crate::store::{
    items_json, parse_module_data, ModuleData, PlayerTurn, SessionCheck, StoreError, TurnWriter,
};
use async_trait::async_trait;
use plugin_api::Player;
use serde_json::Value;
use std::sync::Arc;

/// The end of a command's turn on a server store: its write, if it has one. Dropped, it
/// writes nothing: an optimistic turn has no transaction to roll back; a locked one leaves
/// its connection unsettled, and the pool closes it, which rolls it back.
pub(super) struct ServerTurn {
    conn: Lease,
    sql: Arc<Sql>,
    backend: Backend,
    player_id: String,
    module: String,
    token_hash: String,
    /// The record as read: written back unchanged when only the module's data changed.
    player: Player,
    /// The record's version as read.
    version: i64,
    /// Whether the module's data had a row when read.
    had_data: bool,
    /// Whether the turn began a transaction and locked the player's row.
    locked: bool,
}

/// Reads a turn: the record, the module's data, and the session checked, in one statement on
/// `conn`, which the turn keeps until it ends. A `locked` turn (one run again after a
/// conflict) first begins a transaction and locks the player's row, which its end releases.
pub(super) async fn begin(
    mut conn: Lease,
    sql: &Arc<Sql>,
    backend: Backend,
    player_id: &str,
    module: &str,
    session: SessionCheck<'_>,
    locked: bool,
) -> Result<PlayerTurn, StoreError> {
    if locked {
        conn.start_transaction().await?;
        // The read comes after the lock, in a statement of its own: a statement's snapshot
        // is taken as it starts, before it waited for the row.
        let lock = sqlx::query(&sql.lock_player).bind(player_id);
        if conn.fetch_optional(lock).await?.is_none() {
            conn.end_transaction(false).await?;
            return Err(StoreError::NoSuchPlayer(player_id.to_owned()));
        }
    }
    let read = sqlx::query(&sql.turn_read)
        .bind(player_id)
        .bind(module)
        .bind(session.token_hash)
        .bind(player_id)
        .bind(player_id);
    let row = match conn.fetch_optional(read).await? {
        Some(row) => row,
        None => {
            if locked {
                conn.end_transaction(false).await?;
            }
            return Err(StoreError::NoSuchPlayer(player_id.to_owned()));
        }
    };
    let player = read_player(&row, 0, player_id.to_owned())?;
    let version = int(&row, 5)?;
    let data = optional_text(&row, 6)?;
    let expires_at: Option<i64> = sqlx::Row::try_get(&row, 7).map_err(db_error)?;
    if expires_at.is_none_or(|at| at <= session.now_ms) {
        if locked {
            conn.end_transaction(false).await?;
        }
        return Err(StoreError::SessionEnded);
    }
    let module_data = match &data {
        Some(text) => parse_module_data(player_id, module, text)?,
        None => ModuleData::new(),
    };
    let writer = ServerTurn {
        conn,
        sql: sql.clone(),
        backend,
        player_id: player_id.to_owned(),
        module: module.to_owned(),
        token_hash: session.token_hash.to_owned(),
        player: player.clone(),
        version,
        had_data: data.is_some(),
        locked,
    };
    Ok(PlayerTurn::new(player, module_data, Box::new(writer)))
}

#[async_trait]
impl TurnWriter for ServerTurn {
    async fn end(
        self: Box<Self>,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ServerTurn {
            mut conn,
            sql,
            backend,
            player_id,
            module,
            token_hash,
            player: read,
            version,
            had_data,
            locked,
        } = *self;
        if player.is_none() && module_data.is_none() {
            if locked {
                conn.end_transaction(true).await?;
            }
            return Ok(());
        }
        let write = Write {
            sql,
            player: player.cloned().unwrap_or(read),
            data: module_data.map(|data| Value::Object(data.clone()).to_string()),
            player_id,
            module,
            token_hash,
            version,
            now_ms,
        };
        // MariaDB's one-statement write needs the module's row: the first one is written in a
        // transaction with the record's.
        let first_data = write.data.is_some() && backend == Backend::MySql && !had_data;
        let in_transaction = locked || first_data;
        if in_transaction && !locked {
            conn.start_transaction().await?;
        }
        let applied = match &write.data {
            Some(data) if first_data => {
                let applied = conn.execute(write.record()).await?.rows_affected() > 0;
                if applied {
                    conn.execute(write.upsert(data)).await?;
                }
                applied
            }
            Some(data) => conn.execute(write.with_data(data)).await?.rows_affected() > 0,
            None => conn.execute(write.record()).await?.rows_affected() > 0,
        };
        if in_transaction {
            conn.end_transaction(applied).await?;
        }
        if applied {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }
}

/// What a turn writes.
struct Write {
    sql: Arc<Sql>,
    player: Player,
    /// The module's data, if it changed.
    data: Option<String>,
    player_id: String,
    module: String,
    token_hash: String,
    /// The record's version the turn read.
    version: i64,
    now_ms: i64,
}

impl Write {
    /// [`Sql::turn_write`], bound.
    fn record(&self) -> Bound<'_> {
        self.with_record(&self.sql.turn_write)
            .bind(self.player_id.as_str())
            .bind(self.version)
            .bind(self.token_hash.as_str())
            .bind(self.player_id.as_str())
            .bind(self.now_ms)
    }

    /// `statement` with its first parameters bound: the record's five columns and
    /// `updated_at`, which both writes begin with.
    fn with_record<'q>(&'q self, statement: &'q str) -> Bound<'q> {
        let p = &self.player;
        sqlx::query(statement)
            .bind(p.name.as_str())
            .bind(p.head_img.as_str())
            .bind(p.gold)
            .bind(p.diamond)
            .bind(items_json(p))
            .bind(self.now_ms)
    }

    /// [`Sql::upsert_module_data`], bound.
    fn upsert<'q>(&'q self, data: &'q str) -> Bound<'q> {
        sqlx::query(&self.sql.upsert_module_data)
            .bind(self.player_id.as_str())
            .bind(self.module.as_str())
            .bind(data)
    }

    /// [`Sql::turn_write_with_data`], bound.
    fn with_data<'q>(&'q self, data: &'q str) -> Bound<'q> {
        self.with_record(&self.sql.turn_write_with_data)
            .bind(data)
            .bind(self.player_id.as_str())
            .bind(self.module.as_str())
            .bind(self.version)
            .bind(self.token_hash.as_str())
            .bind(self.player_id.as_str())
            .bind(self.now_ms)
    }
}
