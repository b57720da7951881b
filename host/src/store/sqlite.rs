//! The embedded store: SQLite in the data directory, in WAL mode.
//!
//! One connection, owned by one database thread that runs the store's jobs in order from a
//! channel (never on the reactor, never on the module threads; `db_thread.rs`, which also
//! commits the turns queued together in one transaction). Under load the thread finds
//! the next job already queued and runs it without sleeping; a job per request on tokio's
//! blocking pool instead woke a thread and fought over a lock each time, and that context
//! switching was the largest cost of a request (bench/RESULTS.md). Statements are prepared once
//! and cached on the connection.
//!
//! `synchronous=NORMAL` in WAL mode (the default, [`Durability::Normal`]) keeps every committed
//! transaction across a crash of the process; only a power loss or an OS crash may drop the
//! last ones. `FULL` ([`Durability::Full`], `store.sqlite_synchronous = "full"`) keeps those
//! too, at the price of a sync per commit, and so per group of turns under load
//! (bench/RESULTS.md, "Durability").
//!
//! A turn reads the player's record and module data from memory when it can ([`cache`]): only
//! this host writes the file, through this thread, so what it last committed is what the file
//! holds. A read then costs no database job at all.
//!
//! Length: the `Store` implementation is one impl block of fifteen methods; its turn, options,
//! cache, operators' queries and database thread are files of their own.

use super::{
    items_json, AuditEntry, AuditNote, Grant, PlayerDetails, PlayerTurn, SessionCheck,
    SessionRecord, Store, StoreError, TurnOptions,
};
use async_trait::async_trait;
use cache::TurnCache;
use db_thread::Job;
use plugin_api::Player;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

/// The schema version this host writes (SQLite's `user_version`).
const SCHEMA_VERSION: i64 = SCHEMA[SCHEMA.len() - 1].0;

/// The schema versions, in order: SQLite's `user_version` is the last one applied. The files
/// sit beside the server stores' in `host/migrations/`, one folder per backend.
const SCHEMA: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_players.sql")),
    (2, include_str!("../../migrations/sqlite/0002_audit.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_idempotency_keys.sql"),
    ),
    (4, include_str!("../../migrations/sqlite/0004_fleet.sql")),
    (5, include_str!("../../migrations/sqlite/0005_pushes.sql")),
];

/// SQLite-backed [`Store`]. Clones share the database thread, which ends (closing the
/// connection) when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: crossbeam_channel::Sender<Job>,
    /// `None` with `store.sqlite_cache_players = 0`.
    cache: Option<Arc<TurnCache>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, brings its schema up to date and starts
    /// the database thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let SqliteOptions {
            durability,
            cache_players,
        } = options;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db_error)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            durability.pragma()
        ))
        .map_err(db_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_error)?;
        migrate(&conn)?;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let cache = (cache_players > 0).then(|| Arc::new(TurnCache::new(cache_players)));
        let thread_cache = cache.clone();
        std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || db_thread::run(conn, queue, thread_cache))
            .map_err(|e| unavailable(format!("cannot start the database thread: {e}")))?;
        Ok(SqliteStore { jobs, cache })
    }

    /// Whether turns read player records from memory now.
    #[cfg(test)]
    fn caching(&self) -> bool {
        self.cache.as_ref().is_some_and(|cache| cache.enabled())
    }

    /// Runs `f` with the connection on the database thread.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.with_slot(|slot| match slot.as_mut() {
            Some(conn) => f(conn),
            None => Err(unavailable(
                "the database is closed: the host is shutting down".into(),
            )),
        })
        .await
    }

    /// Runs `f` with the connection's slot (`None` once closed) on the database thread.
    async fn with_slot<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Option<Connection>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job = Job::Run(Box::new(move |slot| {
            let _ = reply.send(f(slot));
        }));
        self.send(job, result).await
    }

    /// Queues `job` for the database thread and waits for the answer it sends on `result`.
    async fn send<T>(
        &self,
        job: Job,
        result: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.jobs
            .send(job)
            .map_err(|_| unavailable("the database thread has stopped".into()))?;
        result
            .await
            .map_err(|_| unavailable("a database job failed (it panicked)".into()))?
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_error)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in SCHEMA.iter().filter(|(version, _)| *version > found) {
        conn.execute_batch(&format!(
            "BEGIN; {sql} PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn login(
        &self,
        account: &str,
        new_player: Player,
        now_ms: i64,
    ) -> Result<Player, StoreError> {
        let account = account.to_owned();
        self.with_conn(move |conn| {
            let tx = write_transaction(conn)?;
            let existing: Option<String> = tx
                .prepare_cached("SELECT player_id FROM players WHERE account = ?1")
                .and_then(|mut select| select.query_row([&account], |row| row.get(0)))
                .optional()
                .map_err(db_error)?;
            let player = match existing {
                Some(player_id) => read_player(&tx, &player_id)?,
                None => {
                    tx.prepare_cached(
                        "INSERT INTO players (player_id, account, name, head_img, gold, diamond, items, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    )
                    .and_then(|mut insert| insert.execute(params![
                            new_player.player_id,
                            account,
                            new_player.name,
                            new_player.head_img,
                            new_player.gold,
                            new_player.diamond,
                            items_json(&new_player),
                            now_ms
                        ]))
                    .map_err(db_error)?;
                    new_player
                }
            };
            tx.commit().map_err(db_error)?;
            Ok(player)
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        player_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let (token_hash, player_id) = (token_hash.to_owned(), player_id.to_owned());
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sessions (token_hash, player_id, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut insert| insert.execute(params![token_hash, player_id, expires_at_ms]))
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "SELECT player_id, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![token_hash, now_ms], |row| {
                        Ok(SessionRecord {
                            player_id: row.get(0)?,
                            expires_at_ms: row.get(1)?,
                        })
                    })
                    .optional()
            })
            .map_err(db_error)
        })
        .await
    }

    async fn end_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_owned();
        self.with_conn(move |conn| {
            let deleted = conn
                .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
                .map_err(db_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn active_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                [now_ms],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(db_error)
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.with_conn(|_| Ok(())).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.with_slot(|slot| {
            let Some(conn) = slot.take() else {
                return Ok(());
            };
            // Fold the write-ahead log into the database, so the file alone is complete.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(db_error)?;
            conn.close().map_err(|(_, e)| db_error(e))
        })
        .await
    }

    async fn open_turn(
        &self,
        player_id: &str,
        module: &str,
        _session: SessionCheck<'_>,
        options: TurnOptions<'_>,
    ) -> Result<PlayerTurn, StoreError> {
        // The session is not checked again: only this host uses the file, and its session
        // cache sees every logout and revoke at once. Nor is anything locked, `locked` or
        // not: this host's `player_locks` already keep a player's turns apart.
        let key = options.key.map(OwnedKey::from);
        let writer = |player_id: String, module: String, key: Option<OwnedKey>| {
            Box::new(SqliteTurn {
                store: self.clone(),
                player_id,
                module,
                key,
            })
        };
        // The cache holds no keys: a keyed turn reads the file.
        if let Some((player, module_data)) = self
            .cache
            .as_ref()
            .filter(|_| key.is_none())
            .and_then(|cache| cache.get(player_id, module))
        {
            let writer = writer(player_id.to_owned(), module.to_owned(), None);
            return Ok(PlayerTurn::new(player, module_data, writer));
        }
        let (player_id, module) = (player_id.to_owned(), module.to_owned());
        let cache = self.cache.clone();
        let (player, module_data, stored, player_id, module, key) = self
            .with_conn(move |conn| {
                let (player, data, stored) = load(conn, &player_id, &module, key.as_ref())?;
                if let Some(cache) = cache {
                    cache.loaded(&player_id, &module, &player, &data);
                }
                Ok((player, data, stored, player_id, module, key))
            })
            .await?;
        let writer = writer(player_id, module, key);
        Ok(PlayerTurn::new(player, module_data, writer).with_stored(stored))
    }

    async fn delete_expired_keys(&self, expired_at_ms: i64, limit: u32) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "DELETE FROM idempotency_keys WHERE rowid IN \
                 (SELECT rowid FROM idempotency_keys WHERE created_at <= ?1 LIMIT ?2)",
            )
            .and_then(|mut delete| delete.execute(params![expired_at_ms, limit]))
            .map(|deleted| deleted as u64)
            .map_err(db_error)
        })
        .await
    }

    async fn find_player(&self, account: &str) -> Result<Option<PlayerDetails>, StoreError> {
        let account = account.to_owned();
        self.with_conn(move |conn| operator::find_player(conn, &account))
            .await
    }

    async fn player_details(&self, player_id: &str) -> Result<Option<PlayerDetails>, StoreError> {
        let player_id = player_id.to_owned();
        self.with_conn(move |conn| operator::player_details(conn, &player_id))
            .await
    }

    async fn grant(
        &self,
        player_id: &str,
        grant: &Grant,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        let (player_id, grant, note) = (player_id.to_owned(), grant.clone(), note.clone());
        let cache = self.cache.clone();
        let pending = cache.as_ref().map(|cache| cache.write_pending(&player_id));
        self.with_conn(move |conn| {
            let granted = operator::grant(conn, &player_id, &grant, &note);
            if let Some(cache) = cache {
                cache.forget(&player_id);
            }
            drop(pending);
            granted
        })
        .await
    }

    async fn revoke_sessions(
        &self,
        player_id: &str,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        let (player_id, note) = (player_id.to_owned(), note.clone());
        self.with_conn(move |conn| operator::revoke_sessions(conn, &player_id, &note))
            .await
    }

    async fn audit_log(
        &self,
        player_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let player_id = player_id.map(str::to_owned);
        self.with_conn(move |conn| operator::audit_log(conn, player_id.as_deref(), limit))
            .await
    }

    async fn module_data_page(
        &self,
        module: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (module, after) = (module.to_owned(), after.to_owned());
        self.with_conn(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT player_id, data FROM module_data WHERE module = ?1 AND player_id > ?2 \
                     ORDER BY player_id LIMIT ?3",
                )
                .map_err(db_error)?;
            let rows = select
                .query_map(params![module, after, limit], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn module_data_count(&self, module: &str) -> Result<u64, StoreError> {
        let module = module.to_owned();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM module_data WHERE module = ?1",
                [module],
                |row| row.get::<_, i64>(0),
            )
            .map(|count| count.max(0) as u64)
            .map_err(db_error)
        })
        .await
    }

    async fn replace_module_data(
        &self,
        player_id: &str,
        module: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let (player_id, module, expected, new) = (
            player_id.to_owned(),
            module.to_owned(),
            expected.to_owned(),
            new.to_owned(),
        );
        // On the database thread, between the write queue's transactions: a turn's write
        // queued before it lands after it and wins (it changed the data); the player cache
        // may still hold the older text, which the module's migrator reads as before.
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE module_data SET data = ?4 WHERE player_id = ?1 AND module = ?2 AND data = ?3",
                params![player_id, module, expected, new],
            )
            .map(|rows| rows == 1)
            .map_err(db_error)
        })
        .await
    }

    fn fleet(&self) -> &dyn crate::store::FleetStore {
        self
    }

    fn pushes(&self) -> &dyn crate::store::push::PushStore {
        self
    }

    async fn set_sole_user(&self, sole_user: bool) {
        let Some(cache) = self.cache.clone() else {
            return;
        };
        // On the database thread, between two jobs: no turn is loading or writing meanwhile.
        // A closed store has nothing left to read, so its answer does not matter.
        let _ = self
            .with_slot(move |_| {
                cache.set_enabled(sole_user);
                Ok(())
            })
            .await;
    }
}

/// A transaction that reads, then writes: it takes the write lock at `BEGIN` (waiting up to
/// the busy timeout), because a read lock upgraded later fails at once, without waiting, when
/// another connection wrote in between (two processes share the file during a restart).
fn write_transaction(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_error)
}

fn db_error(e: rusqlite::Error) -> StoreError {
    unavailable(e.to_string())
}

fn unavailable(msg: String) -> StoreError {
    StoreError::Unavailable(msg)
}

mod cache;
mod db_thread;
mod fleet;
pub mod lock;
mod operator;
mod options;
mod push;
mod turn;

pub use options::{Durability, SqliteOptions, DEFAULT_CACHE_PLAYERS};
use turn::{load, read_player, OwnedKey, SqliteTurn};

#[cfg(test)]
mod tests;
