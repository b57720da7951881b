//! The server store's connections: a pool that hands a connection back out only if its last
//! statement ran to its end, and asks nothing of the database on the way.
//!
//! sqlx's own pool (0.8.6, and 0.9.1 still) pings every connection when it goes back to the
//! pool, to flush whatever a dropped future left on it: a round trip more per turn, about a
//! quarter of a read turn's cost on PostgreSQL here. This pool (deadpool's, over sqlx
//! connections) knows instead whether a connection is *settled*: [`Conn`] marks it unsettled
//! before each statement or transaction and settled once sqlx has read the whole answer (a
//! database's error included) or the transaction has ended. A connection given back unsettled
//! (its future was dropped mid-statement, or inside a transaction, or it failed on the wire)
//! is taken out of the pool and closed at once ([`Lease`]), never reused, so no one inherits
//! its half-read answer or its open transaction, and the database rolls such a transaction
//! back, freeing its locks, as the connection closes. One idle a
//! while is pinged before it is handed out (the database or the network may have dropped it).

use super::rows::db_error;
use super::{no_answer, Backend, PoolSettings};
use crate::store::{tls, DatabaseUrl, StoreError};
use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult, TimeoutType};
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyQueryResult, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, ConnectOptions, Connection, Executor};
use std::str::FromStr;
use std::time::Duration;

/// A pooled connection idle longer than this is pinged before it is used, and replaced if it
/// does not answer.
const PING_IF_IDLE: Duration = Duration::from_secs(5);

/// A statement with its parameters bound.
pub(super) type Bound<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The server store's connections; a clone is a handle on the same pool.
#[derive(Clone)]
pub(super) struct Pool {
    pool: managed::Pool<Manager>,
    /// The URL as logs may show it (no password).
    shown: String,
    size: usize,
    /// Which database, for the names of its TLS settings in a failure's advice.
    backend: Backend,
}

/// A connection leased from the [`Pool`]. Dropped settled, it goes back to the pool; dropped
/// unsettled, it is taken out of the pool and closed at once, so that the database rolls back
/// whatever it was in the middle of and frees its locks now, not when the pool next looks.
pub(super) struct Lease(Option<managed::Object<Manager>>);

impl std::ops::Deref for Lease {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.0
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        self.0
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            if !object.settled {
                // Out of the pool (its place is free for a new connection), then dropped:
                // sqlx closes the socket.
                drop(managed::Object::take(object));
            }
        }
    }
}

impl Pool {
    /// A pool on `text` (the URL `url` shows redacted), with one connection made now, so that
    /// a database that cannot be reached is reported at start.
    pub(super) async fn connect(
        text: &str,
        url: &DatabaseUrl,
        backend: Backend,
        settings: &PoolSettings,
    ) -> Result<Pool, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(text)
            .map_err(|e| StoreError::Unavailable(format!("{url}: {e}")))?;
        let manager = Manager {
            options,
            setup: session_setup(backend, settings.statement_timeout),
            patience: settings.patience(),
        };
        let size = settings.size.max(1) as usize;
        let pool = managed::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("{url}: {e}")))?;
        let pool = Pool {
            pool,
            shown: url.to_string(),
            size,
            backend,
        };
        drop(pool.get().await?);
        Ok(pool)
    }

    /// A settled connection: a free one, or a new one if there are fewer than the pool's size.
    pub(super) async fn get(&self) -> Result<Lease, StoreError> {
        self.pool
            .get()
            .await
            .map(|object| Lease(Some(object)))
            .map_err(|e| match e {
                PoolError::Timeout(TimeoutType::Wait) => StoreError::Unavailable(format!(
                    "no free connection to {} in time: all {} (store.pool_size) are busy",
                    self.shown, self.size
                )),
                PoolError::Timeout(_) => {
                    StoreError::Unavailable(format!("cannot connect to {}: timed out", self.shown))
                }
                PoolError::Backend(e) => StoreError::Unavailable(format!(
                    "cannot connect to {}: {}",
                    self.shown,
                    tls::describe(&e, self.backend)
                )),
                PoolError::Closed => StoreError::Unavailable("the store is closed".into()),
                other => StoreError::Unavailable(format!("{}: {other}", self.shown)),
            })
    }

    /// Closes the idle connections now and every leased one as it comes back; later calls
    /// fail as unavailable.
    pub(super) fn close(&self) {
        self.pool.close();
    }
}

/// A connection and whether its last statement or transaction ran to its end.
pub(super) struct Conn {
    raw: AnyConnection,
    settled: bool,
    /// Inside a transaction begun by [`Conn::start_transaction`]: unsettled until it ends.
    in_transaction: bool,
    /// How long a statement's answer may take: the database's own limit
    /// (`store.statement_timeout_ms`, which it enforces) and a connection's time more. A
    /// network that stops passing packets leaves the database's limit nothing to end, and
    /// this ends the wait instead: the connection, left unsettled, is closed.
    patience: Duration,
    /// A statement's answer did not come in time: the connection is out of step with the
    /// database (an answer may still come), so nothing more is sent on it, not even a
    /// rollback, and it is never settled again.
    given_up: bool,
}

impl Conn {
    /// Begins a transaction that the statements after it run in, until
    /// [`Conn::end_transaction`]; the connection stays unsettled until then.
    pub(super) async fn start_transaction(&mut self) -> Result<(), StoreError> {
        self.unsettle()?;
        self.in_transaction = true;
        let done = tokio::time::timeout(self.patience, self.raw.execute("BEGIN")).await;
        self.answered(done).map(drop)
    }

    /// Commits (`commit`) or rolls back the transaction of [`Conn::start_transaction`].
    pub(super) async fn end_transaction(&mut self, commit: bool) -> Result<(), StoreError> {
        self.unsettle()?;
        self.in_transaction = false;
        let end = self.raw.execute(if commit { "COMMIT" } else { "ROLLBACK" });
        let done = tokio::time::timeout(self.patience, end).await;
        self.answered(done).map(drop)
    }

    pub(super) async fn execute(&mut self, query: Bound<'_>) -> Result<AnyQueryResult, StoreError> {
        self.unsettle()?;
        let done = tokio::time::timeout(self.patience, query.execute(&mut self.raw)).await;
        self.answered(done)
    }

    pub(super) async fn fetch_optional(
        &mut self,
        query: Bound<'_>,
    ) -> Result<Option<AnyRow>, StoreError> {
        self.unsettle()?;
        let done = tokio::time::timeout(self.patience, query.fetch_optional(&mut self.raw)).await;
        self.answered(done)
    }

    pub(super) async fn fetch_one(&mut self, query: Bound<'_>) -> Result<AnyRow, StoreError> {
        self.unsettle()?;
        let done = tokio::time::timeout(self.patience, query.fetch_one(&mut self.raw)).await;
        self.answered(done)
    }

    pub(super) async fn fetch_all(&mut self, query: Bound<'_>) -> Result<Vec<AnyRow>, StoreError> {
        self.unsettle()?;
        let done = tokio::time::timeout(self.patience, query.fetch_all(&mut self.raw)).await;
        self.answered(done)
    }

    /// Marks the connection unsettled before a statement, unless it was given up on: then
    /// the statement is not sent.
    fn unsettle(&mut self) -> Result<(), StoreError> {
        self.settled = false;
        if self.given_up {
            return Err(StoreError::Unavailable(
                "the connection was given up on: an earlier answer did not come in time".into(),
            ));
        }
        Ok(())
    }

    /// Whether the last statement ran to its end, with a value or with the database's
    /// refusal (outside a transaction): then nothing of a refused statement applied.
    pub(super) fn is_settled(&self) -> bool {
        self.settled
    }

    /// The connection itself, for sqlx's migrator; [`Conn::settle`] it once that is done.
    pub(super) fn unsettled(&mut self) -> &mut AnyConnection {
        self.settled = false;
        &mut self.raw
    }

    /// What [`Conn::unsettled`] was lent for has ended.
    pub(super) fn settle(&mut self) {
        self.settled = true;
    }

    /// A statement's answer, or none in time: then the connection stays unsettled (closed as
    /// its lease ends), and the statement may or may not have run.
    fn answered<T>(
        &mut self,
        done: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match done {
            Ok(done) => self.settle_after(done),
            Err(_) => {
                self.settled = false;
                self.given_up = true;
                Err(no_answer("a statement", self.patience))
            }
        }
    }

    /// sqlx has read the whole answer when the call returns, with a value or with the
    /// database's refusal; an error of the connection itself leaves it unusable. Inside a
    /// transaction nothing is settled.
    fn settle_after<T>(&mut self, done: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        self.settled = !self.in_transaction
            && matches!(
                &done,
                Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
            );
        done.map_err(db_error)
    }
}

/// Makes connections (with the session settings) and decides which may be handed out again.
pub(super) struct Manager {
    options: AnyConnectOptions,
    /// Statements run on every new connection, each with a fallback for the other dialect.
    setup: Vec<(String, Option<String>)>,
    /// How long a statement's answer may take ([`Conn::patience`]).
    patience: Duration,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Conn, sqlx::Error> {
        let mut raw = self.options.connect().await?;
        for (statement, fallback) in &self.setup {
            if let Err(e) = raw.execute(statement.as_str()).await {
                let Some(fallback) = fallback else {
                    return Err(e);
                };
                raw.execute(fallback.as_str()).await?;
            }
        }
        Ok(Conn {
            raw,
            settled: true,
            in_transaction: false,
            patience: self.patience,
            given_up: false,
        })
    }

    async fn recycle(&self, conn: &mut Conn, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if !conn.settled {
            return Err(RecycleError::message(
                "left inside a statement or a transaction",
            ));
        }
        if metrics.last_used() >= PING_IF_IDLE {
            conn.settled = false;
            conn.raw.ping().await?;
            conn.settled = true;
        }
        Ok(())
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
