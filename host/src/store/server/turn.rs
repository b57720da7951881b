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
//! A turn that is not locked reads in a batch with other turns ([`Reads`]: its read is one
//! of a statement's), and unless it has gifts or pushes to write, it writes in a batch too
//! ([`Writes`]: its write is one of a commit's, with the same checks); a locked turn leases
//! one connection for its whole length. A store that does not batch
//! (`store.batch_turns = false`, or a server without `JSON_TABLE`) reads and writes each turn
//! on its own, a connection leased for each.
//!
//! A keyed command (`Idempotency-Key`) costs no round trip more to look its key up: the read
//! is [`Sql::turn_read_keyed`] (or one of a batch, which has the same columns), the same
//! statement with two more columns. Its reply is stored with its write: in a batch, by the
//! batch's statements ([`Writes`]); alone, on PostgreSQL in the same statement
//! ([`Sql::turn_write_keyed`], [`Sql::turn_write_with_data_keyed`]), on MariaDB in a
//! transaction around the write and [`Sql::insert_key`]. So a keyed write and its stored
//! reply commit together, and a retry that raced its first attempt on another host loses the
//! version check, runs again and reads the winner's reply. The client SDK sends a key with
//! every command, so this is the common path, and it batches as an unkeyed one does.

use super::pool::{Bound, Lease, Pool};
use super::push::{write_effects, write_gifts, PushSql};
use super::reads::Reads;
use super::rows::{db_error, int, optional_text, read_player};
use super::sql::Sql;
use super::writes::{Writes, Written};
use super::{lock_player, Backend};
use crate::store::{
    items_json, parse_module_data, KeyRow, ModuleData, PlayerTurn, SessionCheck, StoreError,
    StoredReply, TurnEffects, TurnOptions, TurnWriter,
};
use async_trait::async_trait;
use plugin_api::Player;
use serde_json::Value;
use sqlx::any::AnyRow;
use std::sync::Arc;

/// The end of a command's turn on a server store: its write, if it has one. Dropped, it
/// writes nothing: an optimistic turn has no transaction to roll back; a locked one leaves
/// its connection unsettled, and the pool closes it, which rolls it back.
pub(super) struct ServerTurn {
    /// The connection the turn read on (a locked turn), else `None`: the write
    /// takes one from `pool`.
    conn: Option<Lease>,
    pool: Pool,
    /// Where a plain write goes (a turn not locked, with no gifts or pushes),
    /// unless the store does not batch.
    writes: Option<Writes>,
    sql: Arc<Sql>,
    push_sql: Arc<PushSql>,
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
    /// A keyed turn's key and fingerprint, stored with its write.
    key: Option<(String, String)>,
}

/// Reads a turn: the record, the module's data, and the session checked, in one statement.
/// A turn that is not locked (keyed or not) reads in a batch ([`Reads`]), or on a connection
/// it gives back at once when the store does not batch (`reads` is `None`). A `locked` turn
/// (one run again after a conflict) reads on a connection from `pool` that it keeps until it
/// ends: it first begins a transaction and locks the player's row, which its end releases.
pub(super) async fn begin(
    (pool, reads, writes): (&Pool, Option<&Reads>, Option<&Writes>),
    (sql, push_sql): (&Arc<Sql>, &Arc<PushSql>),
    backend: Backend,
    player_id: &str,
    module: &str,
    session: SessionCheck<'_>,
    options: TurnOptions<'_>,
) -> Result<PlayerTurn, StoreError> {
    let TurnOptions { locked, key } = options;
    let (conn, row, data) = if let Some(reads) = reads.filter(|_| !locked) {
        let row = reads
            .read(player_id, module, session.token_hash, key)
            .await?;
        let (row, data) = checked(row, player_id, session)?;
        (None, row, data)
    } else {
        let mut conn = pool.get().await?;
        if locked {
            conn.start_transaction().await?;
        }
        match read(&mut conn, sql, player_id, module, session, options).await {
            // A turn that is not locked (a store that does not batch) gives its connection
            // back for the module's call, and its write takes one again, as a batched read's
            // turn does.
            Ok((row, data)) => (locked.then_some(conn), row, data),
            Err(e) => {
                // A locked turn that ends here frees the row now. Should the rollback fail,
                // the connection stays unsettled and the pool closes it, which rolls it back.
                if locked {
                    let _ = conn.end_transaction(false).await;
                }
                return Err(e);
            }
        }
    };
    let player = read_player(&row, 0, player_id.to_owned())?;
    let version = int(&row, 5)?;
    let module_data = match &data {
        Some(text) => parse_module_data(player_id, module, text)?,
        None => ModuleData::new(),
    };
    let stored = match key {
        Some(_) => stored_reply(&row)?,
        None => None,
    };
    let writer = ServerTurn {
        conn,
        pool: pool.clone(),
        writes: writes.cloned(),
        sql: sql.clone(),
        push_sql: push_sql.clone(),
        backend,
        player_id: player_id.to_owned(),
        module: module.to_owned(),
        token_hash: session.token_hash.to_owned(),
        player: player.clone(),
        version,
        had_data: data.is_some(),
        locked,
        key: key.map(|key| (key.key.to_owned(), key.fingerprint.to_owned())),
    };
    Ok(PlayerTurn::new(player, module_data, Box::new(writer)).with_stored(stored))
}

/// A turn's read ([`Sql::turn_read`], or [`Sql::turn_read_keyed`] for a keyed turn), after the
/// player's row lock for a locked turn: the row, and the module's data as stored, once the
/// session is known to hold.
async fn read(
    conn: &mut Lease,
    sql: &Sql,
    player_id: &str,
    module: &str,
    session: SessionCheck<'_>,
    options: TurnOptions<'_>,
) -> Result<(AnyRow, Option<String>), StoreError> {
    if options.locked {
        // The read comes after the lock, in a statement of its own: a statement's snapshot
        // is taken as it starts, before it waited for the row.
        lock_player(conn, sql, player_id).await?;
    }
    let statement = match options.key {
        None => &sql.turn_read,
        Some(_) => &sql.turn_read_keyed,
    };
    let mut read = sqlx::query(statement)
        .bind(player_id)
        .bind(module)
        .bind(session.token_hash)
        .bind(player_id)
        .bind(player_id);
    if let Some(key) = options.key {
        read = read
            .bind(key.key)
            .bind(key.expired_at_ms)
            .bind(player_id)
            .bind(key.key)
            .bind(key.expired_at_ms)
            .bind(player_id);
    }
    let row = conn.fetch_optional(read).await?;
    checked(row, player_id, session)
}

/// A turn's read row ([`Sql::turn_read`]'s columns, first), once the player is known to have
/// a record and the session to hold: the row, and the module's data as stored.
fn checked(
    row: Option<AnyRow>,
    player_id: &str,
    session: SessionCheck<'_>,
) -> Result<(AnyRow, Option<String>), StoreError> {
    let row = row.ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
    let data = optional_text(&row, 6)?;
    let expires_at: Option<i64> = sqlx::Row::try_get(&row, 7).map_err(db_error)?;
    if expires_at.is_none_or(|at| at <= session.now_ms) {
        return Err(StoreError::SessionEnded);
    }
    Ok((row, data))
}

/// The key's fingerprint and reply from a keyed read's last two columns, if it had a row.
fn stored_reply(row: &AnyRow) -> Result<Option<StoredReply>, StoreError> {
    let fingerprint = Sql::TURN_READ_COLUMNS;
    Ok(
        match (
            optional_text(row, fingerprint)?,
            optional_text(row, fingerprint + 1)?,
        ) {
            (Some(fingerprint), Some(reply)) => Some(StoredReply { fingerprint, reply }),
            _ => None,
        },
    )
}

#[async_trait]
impl TurnWriter for ServerTurn {
    async fn end(
        self: Box<Self>,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        effects: &TurnEffects,
        reply: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ServerTurn {
            conn,
            pool,
            writes,
            sql,
            push_sql,
            backend,
            player_id,
            module,
            token_hash,
            player: read,
            version,
            had_data,
            locked,
            key,
        } = *self;
        if player.is_none() && module_data.is_none() && effects.is_empty() {
            if let Some(mut conn) = conn.filter(|_| locked) {
                conn.end_transaction(true).await?;
            }
            return Ok(());
        }
        // The reply is stored only with a write: a turn that changes nothing stores nothing.
        let key = key.zip(reply).map(|((key, fingerprint), reply)| KeyRow {
            key,
            fingerprint,
            reply: reply.to_owned(),
        });
        let write = Write {
            sql,
            player: player.cloned().unwrap_or(read),
            data: module_data.map(|data| Value::Object(data.clone()).to_string()),
            player_id,
            module,
            token_hash,
            version,
            now_ms,
            key,
        };
        // A plain write (no connection held: not locked) goes in a batch, unless
        // it has gifts or pushes to write with it. A lone one comes back, with a writer that
        // it holds until it has written.
        let (write, _writer) = match (conn.is_none(), writes) {
            (true, Some(writes)) if effects.is_empty() => {
                match writes.write(Box::new(write)).await? {
                    Written::Applied => return Ok(()),
                    Written::Conflict => return Err(StoreError::Conflict),
                    Written::Alone(write, writer) => (*write, writer),
                }
            }
            _ => (write, None),
        };
        let mut conn = match conn {
            Some(conn) => conn,
            None => pool.get().await?,
        };
        // MariaDB's one-statement write needs the module's row: the first one is written in a
        // transaction with the record's. A keyed write is too: MariaDB has no data-modifying
        // CTE to store the reply in the same statement.
        let mysql = backend == Backend::MySql;
        let first_data = write.data.is_some() && mysql && !had_data;
        let keyed_mysql = mysql && write.key.is_some();
        // Pushes and group changes go in the write's transaction, after it.
        let in_transaction = locked || first_data || keyed_mysql || !effects.is_empty();
        if in_transaction && !locked {
            conn.start_transaction().await?;
        }
        // Every turn writes its players' rows in id order (the gifts to players before its
        // own, its own, the rest), so two turns that give to each other cannot each hold the
        // row the other waits for.
        let before = effects
            .gifts
            .partition_point(|gift| gift.player_id.as_str() < write.player_id.as_str());
        if let Err(e) = write_gifts(&mut conn, &push_sql, &effects.gifts[..before], now_ms).await {
            conn.end_transaction(false).await?;
            return Err(e);
        }
        let applied = match &write.data {
            Some(data) if first_data => {
                let applied = conn.execute(write.record()).await?.rows_affected() > 0;
                if applied {
                    conn.execute(write.upsert(data)).await?;
                }
                applied
            }
            data => {
                // PostgreSQL stores a keyed reply in the write's own statement.
                let key = write.key.as_ref().filter(|_| !mysql);
                let statement = match (data, key) {
                    (Some(data), Some(key)) => Write::keyed(
                        write.with_data(data, &write.sql.turn_write_with_data_keyed),
                        key,
                        now_ms,
                    ),
                    (Some(data), None) => write.with_data(data, &write.sql.turn_write_with_data),
                    (None, Some(key)) => {
                        Write::keyed(write.record_with(&write.sql.turn_write_keyed), key, now_ms)
                    }
                    (None, None) => write.record(),
                };
                conn.execute(statement).await?.rows_affected() > 0
            }
        };
        // MariaDB: the reply goes in the write's transaction, only if the write applied.
        if let (true, true, Some(key)) = (applied, keyed_mysql, &write.key) {
            conn.execute(write.insert_key(key)).await?;
        }
        if applied && !effects.is_empty() {
            let turn = (write.player_id.as_str(), write.module.as_str());
            let after = write_gifts(&mut conn, &push_sql, &effects.gifts[before..], now_ms);
            if let Err(e) = after.await {
                conn.end_transaction(false).await?;
                return Err(e);
            }
            write_effects(&mut conn, &push_sql, turn, effects, now_ms).await?;
        }
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
pub(super) struct Write {
    sql: Arc<Sql>,
    pub(super) player: Player,
    /// The module's data, if it changed.
    pub(super) data: Option<String>,
    pub(super) player_id: String,
    pub(super) module: String,
    pub(super) token_hash: String,
    /// The record's version the turn read.
    pub(super) version: i64,
    pub(super) now_ms: i64,
    /// What to store under the turn's key, with the write.
    pub(super) key: Option<KeyRow>,
}

impl Write {
    /// [`Sql::turn_write`], bound.
    fn record(&self) -> Bound<'_> {
        self.record_with(&self.sql.turn_write)
    }

    /// `statement` ([`Sql::turn_write`] or its keyed form) with the record's values bound.
    fn record_with<'q>(&'q self, statement: &'q str) -> Bound<'q> {
        self.record_columns(statement)
            .bind(self.player_id.as_str())
            .bind(self.version)
            .bind(self.token_hash.as_str())
            .bind(self.player_id.as_str())
            .bind(self.now_ms)
    }

    /// `statement` with its first parameters bound: the record's five columns and
    /// `updated_at`, which every write begins with.
    fn record_columns<'q>(&'q self, statement: &'q str) -> Bound<'q> {
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

    /// `statement` ([`Sql::turn_write_with_data`] or its keyed form) with the record's and
    /// the data's values bound.
    fn with_data<'q>(&'q self, data: &'q str, statement: &'q str) -> Bound<'q> {
        self.record_columns(statement)
            .bind(data)
            .bind(self.player_id.as_str())
            .bind(self.module.as_str())
            .bind(self.version)
            .bind(self.token_hash.as_str())
            .bind(self.player_id.as_str())
            .bind(self.now_ms)
    }

    /// A keyed write's statement with the key's values bound after the write's (PostgreSQL's
    /// CTEs: [`Sql::turn_write_keyed`], [`Sql::turn_write_with_data_keyed`]).
    fn keyed<'q>(statement: Bound<'q>, key: &'q KeyRow, now_ms: i64) -> Bound<'q> {
        statement
            .bind(key.key.as_str())
            .bind(key.fingerprint.as_str())
            .bind(key.reply.as_str())
            .bind(now_ms)
    }

    /// [`Sql::insert_key`], bound (MariaDB, inside the write's transaction).
    fn insert_key<'q>(&'q self, key: &'q KeyRow) -> Bound<'q> {
        sqlx::query(&self.sql.insert_key)
            .bind(self.player_id.as_str())
            .bind(key.key.as_str())
            .bind(key.fingerprint.as_str())
            .bind(key.reply.as_str())
            .bind(self.now_ms)
    }
}
