//! The server store: PostgreSQL or MariaDB/MySQL, one database shared by several hosts.
//!
//! sqlx's `Any` driver over a connection pool: one implementation for both backends, with the
//! statements of each in [`sql`], the pool in [`pool`], the operators' queries in
//! [`operator`]. The pool reconnects by itself: while the database is down,
//! calls fail as [`StoreError::Unavailable`] (the client gets -6) and the host keeps running.
//!
//! Hosts share players, so a turn must keep out the other hosts too. It is optimistic
//! ([`turn`]): one read of the record, its version and the session, and a write that applies
//! only over the version it read and only while the session holds, else the turn runs again.
//! An operator's change (a grant, a revocation) locks the row (`SELECT … FOR UPDATE`) and
//! bumps the version. Both backends run at READ COMMITTED (PostgreSQL's default, set on
//! MariaDB).

mod fleet;
mod migrations;
mod notices;
mod operator;
mod pool;
mod push;
mod reads;
mod rows;
mod sql;
mod turn;
mod writes;

use super::url::DatabaseUrl;
use super::{
    items_json, AuditEntry, AuditNote, BatchCounts, Grant, PlayerDetails, PlayerTurn, SessionCheck,
    SessionRecord, Store, StoreError, TurnOptions,
};
use async_trait::async_trait;
use plugin_api::Player;
use pool::{Lease, Pool};
use rows::{int, read_player, text};
use sql::Sql;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Connections at most: batched reads take `batch_readers` of them at most, batched
    /// writes `batch_writers`; a turn that is not batched holds one to write (a locked turn
    /// from its read on).
    pub size: u32,
    /// How long to wait for a connection (a new one, or a free one from the pool).
    pub connect_timeout: Duration,
    /// Longest a statement may run, waiting for a lock included; also how long a connection
    /// may sit idle inside a transaction (PostgreSQL) before the server ends it.
    pub statement_timeout: Duration,
    /// Whether commands' reads and writes go in batches ([`reads`], [`writes`]), where the
    /// server can (`JSON_TABLE`: MariaDB 10.6, MySQL 8.0.4); else each command reads and
    /// writes on a connection of its own.
    pub batch_turns: bool,
    /// Batches of reads sent at once, at most ([`reads`]).
    pub batch_readers: u32,
    /// Batches of writes (or lone writes) applied at once, at most ([`writes`]).
    pub batch_writers: u32,
}

impl PoolSettings {
    /// How long a call may wait for the database's answer: a connection's time, then the
    /// statement's. Past it a statement, a batch, or a turn's wait for one gives up.
    fn patience(&self) -> Duration {
        self.connect_timeout + self.statement_timeout
    }
}

/// Whether the store batches turns, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Batching {
    On,
    /// `store.batch_turns = false`.
    Off,
    /// The server cannot: the probe's error.
    Unsupported(String),
}

/// Whether the server reads JSON arrays as rows, which batches need: on MariaDB and MySQL, a
/// `JSON_TABLE` of an empty array (PostgreSQL's `json_to_recordset` is as old as 9.4). A
/// server that refuses it cannot batch; one that does not answer fails the store's opening.
async fn batching(conn: &mut Lease, backend: Backend) -> Result<Batching, StoreError> {
    if backend == Backend::Postgres {
        return Ok(Batching::On);
    }
    let probe = "SELECT COUNT(*) FROM JSON_TABLE('[]', '$[*]' COLUMNS (x INT PATH '$')) AS t";
    match conn.fetch_one(sqlx::query(probe)).await {
        Ok(_) => Ok(Batching::On),
        Err(e) if conn.is_settled() => Ok(Batching::Unsupported(e.to_string())),
        Err(e) => Err(e),
    }
}

/// What a call gets when the database did not answer `what` (a read, a write, a statement)
/// within `patience`.
fn no_answer(what: &str, patience: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "the database did not answer {what} within {} ms (store.connect_timeout_ms and \
         store.statement_timeout_ms)",
        patience.as_millis()
    ))
}

/// Batches of one kind and the turns in them, counted by the task that runs them.
#[derive(Default)]
struct Batched {
    batches: AtomicU64,
    turns: AtomicU64,
    /// Batches undone, whose turns then went alone (writes).
    undone: AtomicU64,
}

impl Batched {
    fn done(&self, turns: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.turns.fetch_add(turns as u64, Ordering::Relaxed);
    }

    fn undone(&self) {
        self.undone.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64, u64) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        (load(&self.batches), load(&self.turns), load(&self.undone))
    }
}

/// The [`Store`] on a server database.
pub struct ServerStore {
    pool: Pool,
    /// Turn reads, batched ([`reads`]), and plain turn writes ([`writes`]), unless
    /// `batching` is not on.
    reads: Option<reads::Reads>,
    writes: Option<writes::Writes>,
    batching: Batching,
    sql: Arc<Sql>,
    fleet_sql: fleet::FleetSql,
    push_sql: Arc<push::PushSql>,
    backend: Backend,
    /// PostgreSQL: the fleet's and the pushes' notices (`LISTEN`), started by the first
    /// subscriber.
    notices: Option<notices::Notices>,
}

impl ServerStore {
    /// Connects (waiting at most the connect timeout) and brings the schema up to date.
    pub async fn open(
        url: &DatabaseUrl,
        settings: &PoolSettings,
    ) -> Result<ServerStore, StoreError> {
        let (parsed, backend, sql) = match url {
            DatabaseUrl::Postgres(parsed) => (parsed, Backend::Postgres, Sql::postgres()),
            DatabaseUrl::MySql(parsed) => (parsed, Backend::MySql, Sql::mysql()),
            DatabaseUrl::Sqlite(_) => {
                return Err(StoreError::Unavailable(format!(
                    "{url} is not a server database"
                )))
            }
        };
        super::tls::check_ca_file(url, backend)?;
        let text = super::tls::connect_text(parsed, backend);
        let pool = Pool::connect(&text, url, backend, settings).await?;
        let mut conn = pool.get().await?;
        migrations::run(conn.unsettled(), backend).await?;
        conn.settle();
        let batching = match settings.batch_turns {
            false => Batching::Off,
            true => batching(&mut conn, backend).await?,
        };
        drop(conn);
        let sql = Arc::new(sql);
        let on = batching == Batching::On;
        Ok(ServerStore {
            reads: on.then(|| reads::Reads::start(pool.clone(), sql.clone(), settings)),
            writes: on.then(|| writes::Writes::start(pool.clone(), backend, settings)),
            batching,
            pool,
            sql,
            fleet_sql: fleet::FleetSql::new(backend),
            push_sql: Arc::new(push::PushSql::new(backend)),
            backend,
            notices: (backend == Backend::Postgres).then(|| notices::Notices::new(&text)),
        })
    }

    /// A settled connection from the pool.
    async fn conn(&self) -> Result<Lease, StoreError> {
        self.pool.get().await
    }
}

/// Locks the player's row until the transaction `conn` is in ends (its
/// [`Conn::start_transaction`](pool::Conn::start_transaction)): the record,
/// [`StoreError::NoSuchPlayer`] if none.
async fn lock_player(conn: &mut Lease, sql: &Sql, player_id: &str) -> Result<Player, StoreError> {
    let lock = sqlx::query(&sql.lock_player).bind(player_id);
    let row = conn
        .fetch_optional(lock)
        .await?
        .ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
    read_player(&row, 0, player_id.to_owned())
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
        self.conn()
            .await?
            .execute(
                sqlx::query(&self.sql.insert_player)
                    .bind(new_player.player_id.as_str())
                    .bind(account)
                    .bind(new_player.name.as_str())
                    .bind(new_player.head_img.as_str())
                    .bind(new_player.gold)
                    .bind(new_player.diamond)
                    .bind(items_json(&new_player))
                    .bind(now_ms)
                    .bind(now_ms),
            )
            .await?;
        let row = self
            .conn()
            .await?
            .fetch_one(sqlx::query(&self.sql.player_by_account).bind(account))
            .await?;
        read_player(&row, 1, text(&row, 0)?)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        player_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .await?
            .execute(
                sqlx::query(&self.sql.insert_session)
                    .bind(token_hash)
                    .bind(player_id)
                    .bind(expires_at_ms),
            )
            .await?;
        Ok(())
    }

    async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = self
            .conn()
            .await?
            .fetch_optional(sqlx::query(&self.sql.session).bind(token_hash).bind(now_ms))
            .await?;
        row.map(|row| {
            Ok(SessionRecord {
                player_id: text(&row, 0)?,
                expires_at_ms: int(&row, 1)?,
            })
        })
        .transpose()
    }

    async fn end_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = self
            .conn()
            .await?
            .execute(sqlx::query(&self.sql.delete_session).bind(token_hash))
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn active_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let row = self
            .conn()
            .await?
            .fetch_one(sqlx::query(&self.sql.count_sessions).bind(now_ms))
            .await?;
        Ok(int(&row, 0)?.max(0) as u64)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.conn()
            .await?
            .execute(sqlx::query(&self.sql.ping))
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close();
        if let Some(notices) = &self.notices {
            notices.stop();
        }
        Ok(())
    }

    async fn open_turn(
        &self,
        player_id: &str,
        module: &str,
        session: SessionCheck<'_>,
        options: TurnOptions<'_>,
    ) -> Result<PlayerTurn, StoreError> {
        turn::begin(
            (&self.pool, self.reads.as_ref(), self.writes.as_ref()),
            (&self.sql, &self.push_sql),
            self.backend,
            player_id,
            module,
            session,
            options,
        )
        .await
    }

    async fn delete_expired_keys(&self, expired_at_ms: i64, limit: u32) -> Result<u64, StoreError> {
        let delete = sqlx::query(&self.sql.delete_expired_keys)
            .bind(expired_at_ms)
            .bind(i64::from(limit));
        Ok(self.conn().await?.execute(delete).await?.rows_affected())
    }

    async fn find_player(&self, account: &str) -> Result<Option<PlayerDetails>, StoreError> {
        let row = self
            .conn()
            .await?
            .fetch_optional(sqlx::query(&self.sql.player_by_account).bind(account))
            .await?;
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
        let rows = self
            .conn()
            .await?
            .fetch_all(
                sqlx::query(&self.sql.module_data_page)
                    .bind(module)
                    .bind(after)
                    .bind(i64::from(limit)),
            )
            .await?;
        rows.iter()
            .map(|row| Ok((text(row, 0)?, text(row, 1)?)))
            .collect()
    }

    fn batch_counts(&self) -> BatchCounts {
        let none = (0, 0, 0);
        let reads = self.reads.as_ref();
        let (read_batches, reads, _) = reads.map_or(none, |reads| reads.counts().read());
        let writes = self.writes.as_ref();
        let (write_batches, writes, write_batches_undone) =
            writes.map_or(none, |writes| writes.counts().read());
        BatchCounts {
            read_batches,
            reads,
            write_batches,
            writes,
            write_batches_undone,
        }
    }

    fn warnings(&self) -> Vec<String> {
        match &self.batching {
            Batching::Unsupported(why) => vec![format!(
                "commands' reads and writes go one by one, not in batches: this server has no \
                 JSON_TABLE (MariaDB 10.6 or MySQL 8.0.4 and newer have it: upgrade to serve \
                 more commands a second); the probe said: {why}"
            )],
            Batching::On | Batching::Off => Vec::new(),
        }
    }

    fn fleet(&self) -> &dyn crate::store::FleetStore {
        self
    }

    fn pushes(&self) -> &dyn crate::store::PushStore {
        self
    }

    async fn replace_module_data(
        &self,
        player_id: &str,
        module: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        // One autocommit statement, applied only over the data it expects: a turn's write
        // that lands first wins.
        let done = self
            .conn()
            .await?
            .execute(
                sqlx::query(&self.sql.replace_module_data)
                    .bind(new)
                    .bind(player_id)
                    .bind(module)
                    .bind(expected),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn module_data_count(&self, module: &str) -> Result<u64, StoreError> {
        let row = self
            .conn()
            .await?
            .fetch_one(sqlx::query(&self.sql.count_module_data).bind(module))
            .await?;
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
