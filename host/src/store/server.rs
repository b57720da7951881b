//! The server store: PostgreSQL or MariaDB/MySQL, one database shared by several hosts.
//!
//! sqlx's `Any` driver over a connection pool: one implementation for both backends, with the
//! statements of each in [`sql`]. The pool reconnects by itself: while the database is down,
//! calls fail as [`StoreError::Unavailable`] (the client gets -6) and the host keeps running.
//!
//! Hosts share players, so a turn must keep out the other hosts too: it locks the player's row
//! (`SELECT … FOR UPDATE`) for its whole length, module call included, and re-checks the
//! session in the same transaction, so that a logout on one host holds on all of them. Both
//! backends run at READ COMMITTED (PostgreSQL's default, set on MariaDB): a turn's reads after
//! the lock see what the previous turn committed.

mod migrations;
mod sql;

use super::url::DatabaseUrl;
use super::{
    balances, granted, items_json, parse_audit_state, parse_items, parse_module_data, AuditEntry,
    AuditNote, Grant, ModuleData, PlayerDetails, PlayerTurn, SessionCheck, SessionRecord, Store,
    StoreError, TurnWriter,
};
use async_trait::async_trait;
use plugin_api::Player;
use serde_json::Value;
use sql::Sql;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Connection, Executor, Row, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A pooled connection idle longer than this is pinged before it is used, and replaced if
/// it does not answer.
const PING_IF_IDLE: Duration = Duration::from_secs(5);

/// Which server database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    MySql,
}

/// How the store connects: `[store]` in the config.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections at most (each running turn holds one).
    pub size: u32,
    /// How long to wait for a connection (a new one, or a free one from the pool).
    pub connect_timeout: Duration,
    /// Longest a statement may run, waiting for a lock included; also how long a connection
    /// may sit idle inside a transaction (PostgreSQL) before the server ends it.
    pub statement_timeout: Duration,
}

/// The [`Store`] on a server database.
pub struct ServerStore {
    pool: AnyPool,
    sql: Arc<Sql>,
    backend: Backend,
}

impl ServerStore {
    /// Connects (waiting at most the connect timeout) and brings the schema up to date.
    pub async fn open(
        url: &DatabaseUrl,
        settings: &PoolSettings,
    ) -> Result<ServerStore, StoreError> {
        let (text, backend, sql) = match url {
            DatabaseUrl::Postgres(text) => (text.as_str(), Backend::Postgres, Sql::postgres()),
            DatabaseUrl::MySql(text) => (text.as_str(), Backend::MySql, Sql::mysql()),
            DatabaseUrl::Sqlite(_) => {
                return Err(StoreError::Unavailable(format!(
                    "{url} is not a server database"
                )))
            }
        };
        sqlx::any::install_default_drivers();
        let setup = Arc::new(session_setup(backend, settings.statement_timeout));
        let pool = AnyPoolOptions::new()
            .max_connections(settings.size)
            .acquire_timeout(settings.connect_timeout)
            // sqlx pings every connection it hands out by default: a round trip more per
            // turn. Only one that sat idle a while is pinged now (one the database or the
            // network may have dropped meanwhile); under load none is.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    for (statement, fallback) in setup.iter() {
                        if let Err(e) = conn.execute(statement.as_str()).await {
                            let Some(fallback) = fallback else {
                                return Err(e);
                            };
                            conn.execute(fallback.as_str()).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(text)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {url}: {e}")))?;
        migrations::run(&pool, backend).await?;
        Ok(ServerStore {
            pool,
            sql: Arc::new(sql),
            backend,
        })
    }

    /// Adds an audit row in `tx` and returns it.
    async fn append_audit(
        &self,
        tx: &mut Transaction<'static, Any>,
        action: &str,
        player_id: &str,
        note: &AuditNote,
        before: Value,
        after: Value,
    ) -> Result<AuditEntry, StoreError> {
        let (before_text, after_text) = (before.to_string(), after.to_string());
        let insert = sqlx::query(&self.sql.insert_audit)
            .bind(note.at_ms)
            .bind(note.operator.as_str())
            .bind(action)
            .bind(player_id)
            .bind(note.reason.as_str())
            .bind(before_text.as_str())
            .bind(after_text.as_str());
        let id = match self.backend {
            Backend::Postgres => insert
                .fetch_one(&mut **tx)
                .await
                .and_then(|row| row.try_get::<i64, _>(0))
                .map_err(db_error)?,
            Backend::MySql => insert
                .execute(&mut **tx)
                .await
                .map_err(db_error)?
                .last_insert_id()
                .ok_or_else(|| StoreError::Unavailable("the audit row got no id".into()))?,
        };
        Ok(AuditEntry::written(
            id, note, action, player_id, before, after,
        ))
    }

    /// Begins a transaction on a pooled connection, in a task of its own, so that it is
    /// cancel-safe.
    ///
    /// sqlx 0.8 counts a transaction as open only once the server has answered its `BEGIN`: a
    /// future dropped while it waits for that answer (a client that hung up) hands the
    /// connection back to the pool inside a transaction that no one owns. The pool's release
    /// check is a ping, which does not see it, so whatever runs on that connection next (a
    /// login's insert, another player's turn) runs inside it, invisible to the other
    /// connections and hosts until some later `COMMIT` (`tests/it/hangups.rs`). A task is
    /// not dropped with its caller: it always reads the answer, and if the caller has gone by
    /// then, the transaction it returns is dropped with its output, which rolls it back (sqlx
    /// queues the `ROLLBACK`, and the pool's release ping sends it before the connection can
    /// be handed out again).
    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("beginning a transaction: {e}")))?
            .map_err(db_error)
    }

    /// Begins a transaction and locks the player's row: [`StoreError::NoSuchPlayer`] if none.
    async fn lock_player(
        &self,
        player_id: &str,
    ) -> Result<(Transaction<'static, Any>, Player), StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&self.sql.lock_player)
            .bind(player_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
        let player = read_player(&row, 0, player_id.to_owned())?;
        Ok((tx, player))
    }

    async fn details(&self, player_id: &str) -> Result<Option<PlayerDetails>, StoreError> {
        let Some(row) = sqlx::query(&self.sql.account_of)
            .bind(player_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let account = text(&row, 0)?;
        let (created_at_ms, updated_at_ms) = (int(&row, 1)?, int(&row, 2)?);
        let row = sqlx::query(&self.sql.player)
            .bind(player_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
        let player = read_player(&row, 0, player_id.to_owned())?;
        let mut modules = BTreeMap::new();
        for row in sqlx::query(&self.sql.modules_of)
            .bind(player_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
        {
            let module = text(&row, 0)?;
            let data = parse_module_data(player_id, &module, &text(&row, 1)?)?;
            modules.insert(module, data);
        }
        Ok(Some(PlayerDetails {
            account,
            player,
            modules,
            created_at_ms,
            updated_at_ms,
        }))
    }
}

/// Statements run on every new connection, each with a fallback for the other dialect.
fn session_setup(backend: Backend, timeout: Duration) -> Vec<(String, Option<String>)> {
    let ms = timeout.as_millis().max(1);
    match backend {
        Backend::Postgres => vec![
            (format!("SET statement_timeout = {ms}"), None),
            (
                format!("SET idle_in_transaction_session_timeout = {ms}"),
                None,
            ),
        ],
        Backend::MySql => vec![
            (
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into(),
                None,
            ),
            (
                format!(
                    "SET SESSION innodb_lock_wait_timeout = {}",
                    ms.div_ceil(1000)
                ),
                None,
            ),
            // MariaDB's statement limit, in seconds; MySQL's is in milliseconds.
            (
                format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0),
                Some(format!("SET SESSION max_execution_time = {ms}")),
            ),
        ],
    }
}

#[async_trait]
impl Store for ServerStore {
    async fn login(
        &self,
        account: &str,
        new_player: Player,
        now_ms: i64,
    ) -> Result<Player, StoreError> {
        // Two hosts may log a new account in at once: the insert of the second changes
        // nothing, and both read the one row.
        sqlx::query(&self.sql.insert_player)
            .bind(new_player.player_id.as_str())
            .bind(account)
            .bind(new_player.name.as_str())
            .bind(new_player.head_img.as_str())
            .bind(new_player.gold)
            .bind(new_player.diamond)
            .bind(items_json(&new_player))
            .bind(now_ms)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        let row = sqlx::query(&self.sql.player_by_account)
            .bind(account)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        read_player(&row, 1, text(&row, 0)?)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        player_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql.insert_session)
            .bind(token_hash)
            .bind(player_id)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(&self.sql.session)
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(SessionRecord {
                player_id: text(&row, 0)?,
                expires_at_ms: int(&row, 1)?,
            })
        })
        .transpose()
    }

    async fn end_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql.delete_session)
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn active_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(&self.sql.count_sessions)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(int(&row, 0)?.max(0) as u64)
    }

    async fn check(&self) -> Result<(), StoreError> {
        sqlx::query(&self.sql.ping)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close().await;
        Ok(())
    }

    async fn begin_turn(
        &self,
        player_id: &str,
        module: &str,
        session: SessionCheck<'_>,
    ) -> Result<PlayerTurn, StoreError> {
        let (mut tx, player) = self.lock_player(player_id).await?;
        let row = sqlx::query(&self.sql.module_data_and_session)
            .bind(player_id)
            .bind(module)
            .bind(session.token_hash)
            .bind(player_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let data = optional_text(&row, 0)?;
        let expires_at: Option<i64> = row.try_get(1).map_err(db_error)?;
        if expires_at.is_none_or(|at| at <= session.now_ms) {
            return Err(StoreError::SessionEnded);
        }
        let module_data = match data {
            Some(text) => parse_module_data(player_id, module, &text)?,
            None => ModuleData::new(),
        };
        let writer = ServerTurn {
            tx,
            sql: self.sql.clone(),
            player_id: player_id.to_owned(),
            module: module.to_owned(),
        };
        Ok(PlayerTurn::new(player, module_data, Box::new(writer)))
    }

    async fn find_player(&self, account: &str) -> Result<Option<PlayerDetails>, StoreError> {
        let row = sqlx::query(&self.sql.player_by_account)
            .bind(account)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        match row {
            Some(row) => self.details(&text(&row, 0)?).await,
            None => Ok(None),
        }
    }

    async fn player_details(&self, player_id: &str) -> Result<Option<PlayerDetails>, StoreError> {
        self.details(player_id).await
    }

    async fn grant(
        &self,
        player_id: &str,
        grant: &Grant,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        let (mut tx, before) = self.lock_player(player_id).await?;
        let after = granted(&before, grant)?;
        sqlx::query(&self.sql.update_balances)
            .bind(after.gold)
            .bind(after.diamond)
            .bind(items_json(&after))
            .bind(note.at_ms)
            .bind(player_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let entry = self
            .append_audit(
                &mut tx,
                "grant",
                player_id,
                note,
                balances(&before),
                balances(&after),
            )
            .await?;
        tx.commit().await.map_err(db_error)?;
        Ok(entry)
    }

    async fn revoke_sessions(
        &self,
        player_id: &str,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        let (mut tx, _) = self.lock_player(player_id).await?;
        let ended = sqlx::query(&self.sql.delete_sessions_of)
            .bind(player_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        let entry = self
            .append_audit(
                &mut tx,
                "revoke",
                player_id,
                note,
                serde_json::json!({ "sessions": ended }),
                serde_json::json!({ "sessions": 0 }),
            )
            .await?;
        tx.commit().await.map_err(db_error)?;
        Ok(entry)
    }

    async fn audit_log(
        &self,
        player_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit);
        let rows = match player_id {
            Some(player_id) => {
                sqlx::query(&self.sql.audit_of_player)
                    .bind(player_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(&self.sql.audit_of_all)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_error)?;
        rows.iter().map(audit_entry).collect()
    }
}

/// The end of a command's turn on a server store: its writes and the commit, which releases
/// the player's row. Dropped instead, the transaction rolls back (sqlx sends the rollback when
/// the connection goes back to the pool).
struct ServerTurn {
    tx: Transaction<'static, Any>,
    sql: Arc<Sql>,
    player_id: String,
    module: String,
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
            mut tx,
            sql,
            player_id,
            module,
        } = *self;
        if let Some(data) = module_data {
            sqlx::query(&sql.upsert_module_data)
                .bind(player_id.as_str())
                .bind(module.as_str())
                .bind(Value::Object(data.clone()).to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        if let Some(p) = player {
            sqlx::query(&sql.update_player)
                .bind(p.name.as_str())
                .bind(p.head_img.as_str())
                .bind(p.gold)
                .bind(p.diamond)
                .bind(items_json(p))
                .bind(now_ms)
                .bind(player_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}

/// The record from the columns `name, head_img, gold, diamond, items` starting at `first`.
fn read_player(row: &AnyRow, first: usize, player_id: String) -> Result<Player, StoreError> {
    let items = parse_items(&player_id, &text(row, first + 4)?)?;
    Ok(Player {
        name: text(row, first)?,
        head_img: text(row, first + 1)?,
        gold: int(row, first + 2)?,
        diamond: int(row, first + 3)?,
        items,
        player_id,
    })
}

fn audit_entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let id = int(row, 0)?;
    let json = |index: usize| parse_audit_state(id, &text(row, index)?);
    Ok(AuditEntry {
        id,
        at_ms: int(row, 1)?,
        operator: text(row, 2)?,
        action: text(row, 3)?,
        player_id: text(row, 4)?,
        reason: text(row, 5)?,
        before: json(6)?,
        after: json(7)?,
    })
}

fn int(row: &AnyRow, index: usize) -> Result<i64, StoreError> {
    row.try_get(index).map_err(db_error)
}

fn text(row: &AnyRow, index: usize) -> Result<String, StoreError> {
    optional_text(row, index)?.ok_or_else(|| StoreError::Corrupt(format!("column {index} is NULL")))
}

/// A text column. sqlx 0.8's `Any` driver reports MariaDB's `TEXT` columns as binary
/// (launchbadge/sqlx#3390, changed in 0.9), so bytes are accepted too, if they are UTF-8.
fn optional_text(row: &AnyRow, index: usize) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(index) {
        Ok(text) => Ok(text),
        Err(_) => match row.try_get::<Option<Vec<u8>>, _>(index).map_err(db_error)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("column {index} is not UTF-8: {e}"))),
        },
    }
}

fn db_error(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
