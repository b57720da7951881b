//! The server store: PostgreSQL or MariaDB/MySQL, one database shared by several hosts.
//!
//! sqlx's `Any` driver over a connection pool: one implementation for both backends, with the
//! statements of each in [`sql`], the pool in [`connect`], the operators' queries in
//! [`operator`]. The pool reconnects by itself: while the database is down,
//! calls fail as [`StoreError::Unavailable`] (the client gets -6) and the host keeps running.
//!
//! Hosts share players, so a turn must keep out the other hosts too. It is optimistic
//! ([`turn`]): one read of the record, its version and the session, and a write that applies
//! only over the version it read and only while the session holds, else the turn runs again.
//! An operator's change (a grant, a revocation) locks the row (`SELECT … FOR UPDATE`) and
//! bumps the version. Both backends run at READ COMMITTED (PostgreSQL's default, set on
//! MariaDB).

mod connect;
mod migrations;
mod operator;
mod rows;
mod sql;
mod turn;

use super::url::DatabaseUrl;
use super::{
    items_json, AuditEntry, AuditNote, Grant, PlayerDetails, PlayerTurn, SessionCheck,
    SessionRecord, Store, StoreError,
};
use async_trait::async_trait;
use plugin_api::Player;
use rows::{db_error, int, read_player, text};
use sql::Sql;
use sqlx::{Any, AnyPool, Transaction};
use std::sync::Arc;
use std::time::Duration;

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
        let pool = connect::pool(text, url, backend, settings).await?;
        migrations::run(&pool, backend).await?;
        Ok(ServerStore {
            pool,
            sql: Arc::new(sql),
            backend,
        })
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
        turn::begin(
            &self.pool,
            &self.sql,
            self.backend,
            player_id,
            module,
            session,
        )
        .await
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

    async fn module_data_page(
        &self,
        module: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(&self.sql.module_data_page)
            .bind(module)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((text(row, 0)?, text(row, 1)?)))
            .collect()
    }

    async fn replace_module_data(
        &self,
        player_id: &str,
        module: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        // One autocommit statement: it waits for a turn holding the player's row, then sees
        // what that turn committed.
        let done = sqlx::query(&self.sql.replace_module_data)
            .bind(new)
            .bind(player_id)
            .bind(module)
            .bind(expected)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn module_data_count(&self, module: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(&self.sql.count_module_data)
            .bind(module)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(int(&row, 0)?.max(0) as u64)
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
        self.grant_audited(player_id, grant, note).await
    }

    async fn revoke_sessions(
        &self,
        player_id: &str,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        self.revoke_audited(player_id, note).await
    }

    async fn audit_log(
        &self,
        player_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_rows(player_id, limit).await
    }
}
