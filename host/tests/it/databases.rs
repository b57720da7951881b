//! Scratch databases for tests: SQLite in a temporary folder, or a database of its own on the
//! PostgreSQL and MariaDB servers the tests are pointed at ([`testkit::scratch`]), dropped
//! when the test ends; which tests are skipped, and `tests_on!`.
//!
//! The servers: `GAME_TEST_POSTGRES` and `GAME_TEST_MYSQL` give an admin URL (one
//! that may `CREATE DATABASE`); unset or empty, they are
//! `postgres://postgres@127.0.0.1:5432/postgres` and `mysql://root@127.0.0.1:3306/mysql`;
//! `off` skips the backend. A server that does not answer skips its tests (saying so on
//! stderr), unless `GAME_TEST_REQUIRE_DATABASES=1` (CI sets it), which fails them instead.
//! (Not `GAME_HOST_*`: the host reads those as its configuration, and refuses a name that is
//! not a key.)

#![allow(dead_code)] // each test module uses a different part

use host::store::server::PoolSettings;
use host::store::{DatabaseUrl, Store};
use sqlx::{AnyConnection, Connection, Executor, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use testkit::scratch::{DatabaseServer, ScratchDatabase, ScratchError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// Whether several hosts may share the store (SQLite is one host's).
    pub fn is_shared(self) -> bool {
        self != Backend::Sqlite
    }

    /// The database server behind it; SQLite has none.
    fn server(self) -> Option<DatabaseServer> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(DatabaseServer::Postgres),
            Backend::MySql => Some(DatabaseServer::MySql),
        }
    }
}

/// A database of the test's own; dropped (on a server: `DROP DATABASE`) with this value.
pub struct ScratchDb {
    pub backend: Backend,
    /// What `store.url` / `--database-url` takes.
    pub url: String,
    dir: TempDir,
    /// The scratch database on a server.
    server: Option<ScratchDatabase>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl ScratchDb {
    /// A new, empty database; `None` if the backend's tests are skipped (printed to stderr).
    pub async fn create(backend: Backend) -> Option<ScratchDb> {
        let dir = tempfile::tempdir().unwrap();
        let Some(server) = backend.server() else {
            let url = format!("sqlite://{}", dir.path().join("game.db").display());
            return Some(ScratchDb {
                backend,
                url,
                dir,
                server: None,
            });
        };
        let admin = match server.admin_url("GAME_TEST") {
            Ok(admin) => admin,
            Err(why) => return skip(backend, &why),
        };
        let name = format!(
            "game_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let scratch = match ScratchDatabase::create(&admin, &name).await {
            Ok(scratch) => scratch,
            Err(ScratchError::Unreachable(why)) => return skip(backend, &why),
            Err(ScratchError::Refused(why)) => panic!("{why}"),
        };
        Some(ScratchDb {
            backend,
            url: scratch.url().to_owned(),
            dir,
            server: Some(scratch),
        })
    }

    /// A store on this database, as a host would open it: a second call is a second host.
    pub async fn open(&self) -> Arc<dyn Store> {
        self.try_open().await.unwrap()
    }

    pub async fn try_open(&self) -> Result<Arc<dyn Store>, host::store::StoreError> {
        self.try_open_with(&pool_settings()).await
    }

    /// [`ScratchDb::open`] with `settings` where the tests' [`pool_settings`] will not do.
    pub async fn open_with(&self, settings: &PoolSettings) -> Arc<dyn Store> {
        self.try_open_with(settings).await.unwrap()
    }

    async fn try_open_with(
        &self,
        settings: &PoolSettings,
    ) -> Result<Arc<dyn Store>, host::store::StoreError> {
        let url = DatabaseUrl::parse(&self.url, self.dir.path()).unwrap();
        host::store::open(&url, settings, Default::default()).await
    }

    /// Runs `sql` directly on the database (not through a store).
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                rusqlite::Connection::open(Path::new(path))
                    .and_then(|conn| conn.execute_batch(sql))
                    .map_err(|e| e.to_string())
            }
            _ => {
                let mut conn = AnyConnection::connect(&self.url)
                    .await
                    .map_err(|e| e.to_string())?;
                let result = conn
                    .execute(sql)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = conn.close().await;
                result
            }
        }
    }
}

impl ScratchDb {
    /// The connections to this database (other than the one asking) that are inside a
    /// transaction, as the server sees them (PostgreSQL's `pg_stat_activity`, InnoDB's
    /// `innodb_trx`), one line each saying since when and what it holds, for a failing
    /// test's message. SQLite has no server and no connection of another process to ask: none.
    ///
    /// InnoDB lists a transaction from its first statement on, so a bare `BEGIN` is not seen
    /// until the connection runs something inside it. It lists them from a cache that it
    /// refreshes only when the last read of it is more than 100 ms old: read more often than
    /// that (two tests polling at once), it shows the transactions of the moment it froze for
    /// ever, long committed. So the reads of this process wait their turn, each
    /// [`INNODB_TRX_REFRESH`] after the one before.
    pub async fn open_transactions(&self) -> Vec<String> {
        let sql = match self.backend {
            Backend::Sqlite => return Vec::new(),
            Backend::Postgres => {
                "SELECT CONCAT(pid, ' ', state, ' since ', xact_start, ': ', query) \
                 FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            }
            Backend::MySql => {
                "SELECT CONCAT(t.trx_mysql_thread_id, ' ', t.trx_state, ' since ', \
                 t.trx_started, ', rows locked ', t.trx_rows_locked, ', modified ', \
                 t.trx_rows_modified, ': ', COALESCE(t.trx_query, p.info, '-')) \
                 FROM information_schema.innodb_trx t \
                 JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
                 WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()"
            }
        };
        let mut conn = AnyConnection::connect(&self.url).await.unwrap();
        let rows = if self.backend == Backend::MySql {
            let mut last_read = INNODB_TRX_LAST_READ.lock().await;
            if let Some(at) = *last_read {
                tokio::time::sleep(INNODB_TRX_REFRESH.saturating_sub(at.elapsed())).await;
            }
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            *last_read = Some(std::time::Instant::now());
            rows
        } else {
            sqlx::query(sql).fetch_all(&mut conn).await.unwrap()
        };
        let _ = conn.close().await;
        // sqlx's `Any` driver reads MariaDB's CONCAT as bytes, PostgreSQL's as text.
        rows.iter()
            .map(|row| match row.try_get::<Option<String>, _>(0) {
                Ok(line) => line.unwrap_or_default(),
                Err(_) => {
                    let bytes: Option<Vec<u8>> = row.try_get(0).unwrap();
                    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
                }
            })
            .collect()
    }

    /// Waits up to `within` for every connection to this database to be outside a
    /// transaction (connections come back to a pool, and a dropped transaction is rolled back,
    /// a moment after their request ended); returns those last seen inside one.
    pub async fn open_transactions_after(&self, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let open = self.open_transactions().await;
            if open.is_empty() || tokio::time::Instant::now() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How long after a read of `information_schema.innodb_trx` the next one sees it refreshed
/// (InnoDB refreshes it only when its last read is more than 100 ms old).
const INNODB_TRX_REFRESH: Duration = Duration::from_millis(150);

/// When this process last read `innodb_trx`; held while reading it.
static INNODB_TRX_LAST_READ: tokio::sync::Mutex<Option<std::time::Instant>> =
    tokio::sync::Mutex::const_new(None);

/// Small timeouts: a test that waits on a lock fails in seconds, not minutes.
pub fn pool_settings() -> PoolSettings {
    PoolSettings {
        size: 8,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
        batch_turns: true,
        batch_readers: 1,
        batch_writers: 1,
    }
}

fn skip(backend: Backend, why: &str) -> Option<ScratchDb> {
    if databases_required() {
        panic!("{backend:?} is required (GAME_TEST_REQUIRE_DATABASES=1): {why}");
    }
    let name = match backend {
        Backend::Postgres => "PostgreSQL (GAME_TEST_POSTGRES)",
        _ => "MariaDB/MySQL (GAME_TEST_MYSQL)",
    };
    report_skipped(name, why);
    None
}

/// Whether a database test that cannot run fails instead of skipping (CI sets it).
pub fn databases_required() -> bool {
    std::env::var("GAME_TEST_REQUIRE_DATABASES").is_ok_and(|v| v == "1")
}

/// Says that the `name` tests are skipped, and why: on stderr, and in the file `make test`
/// prints once the tests are done.
pub fn report_skipped(name: &str, why: &str) {
    let line = format!("SKIPPED the {name} tests: {why}\n");
    eprint!("{line}");
    // `make test` prints this file's lines once the tests are done.
    let report = crate::harness::target_dir().join("skipped-database-tests.txt");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(report)
        .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
}

/// Runs `case` on a scratch database of `backend`, unless that backend is skipped.
pub async fn with_db<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(ScratchDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(db) = ScratchDb::create(backend).await {
        case(db).await;
    }
}

/// One `#[tokio::test]` per case and backend, each case an `async fn(ScratchDb)` of the
/// calling module: `tests_on!([sqlite: Sqlite, postgres: Postgres] a, b)` makes
/// `sqlite::a`, `sqlite::b`, `postgres::a`, `postgres::b`.
macro_rules! tests_on {
    ([] $($case:ident),+ $(,)?) => {};
    ([$backend:ident: $variant:ident $(, $rest:ident: $rest_variant:ident)*] $($case:ident),+ $(,)?) => {
        mod $backend { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::databases::with_db(crate::databases::Backend::$variant, super::$case).await
            }
        )+ }
        tests_on!([$($rest: $rest_variant),*] $($case),+);
    };
}
