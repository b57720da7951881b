//! Scratch databases for tests: SQLite in a temporary folder, or a database of its own on the
//! PostgreSQL and MariaDB servers the tests are pointed at, dropped when the test ends.
//!
//! The servers: `GAME_TEST_POSTGRES` and `GAME_TEST_MYSQL` give an admin URL (one
//! that may `CREATE DATABASE`); unset, they are `postgres://postgres@127.0.0.1:5432/postgres`
//! and `mysql://root@127.0.0.1:3306/mysql`; `off` skips the backend. A server that does not
//! answer skips its tests (saying so on stderr), unless `GAME_TEST_REQUIRE_DATABASES=1`
//! (CI sets it), which fails them instead. (Not `GAME_HOST_*`: the host reads those as its
//! configuration, and refuses a name that is not a key.)

#![allow(dead_code)] // each test module uses a different part

use host::store::server::PoolSettings;
use host::store::{DatabaseUrl, Store};
use sqlx::{AnyConnection, Connection, Executor};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

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

    /// The admin URL of the server, or why its tests are skipped.
    fn admin_url(self) -> Result<String, String> {
        let (var, default) = match self {
            Backend::Sqlite => return Err("SQLite has no server".into()),
            Backend::Postgres => (
                "GAME_TEST_POSTGRES",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            Backend::MySql => ("GAME_TEST_MYSQL", "mysql://root@127.0.0.1:3306/mysql"),
        };
        match std::env::var(var) {
            Ok(value) if value == "off" => Err(format!("{var}=off")),
            Ok(value) => Ok(value),
            Err(_) => Ok(default.into()),
        }
    }
}

/// A database of the test's own; dropped (on a server: `DROP DATABASE`) with this value.
pub struct ScratchDb {
    pub backend: Backend,
    /// What `store.url` / `--database-url` takes.
    pub url: String,
    dir: TempDir,
    /// The server's admin URL and the scratch database's name.
    server: Option<(String, String)>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl ScratchDb {
    /// A new, empty database; `None` if the backend's tests are skipped (printed to stderr).
    pub async fn create(backend: Backend) -> Option<ScratchDb> {
        let dir = tempfile::tempdir().unwrap();
        if backend == Backend::Sqlite {
            let url = format!("sqlite://{}", dir.path().join("game.db").display());
            return Some(ScratchDb {
                backend,
                url,
                dir,
                server: None,
            });
        }
        sqlx::any::install_default_drivers();
        let admin = match backend.admin_url() {
            Ok(admin) => admin,
            Err(why) => return skip(backend, &why),
        };
        let mut conn = match AnyConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) => return skip(backend, &format!("cannot connect to {admin}: {e}")),
        };
        let name = format!(
            "game_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
            .unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE on {admin}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Some(ScratchDb {
            backend,
            url: url.to_string(),
            dir,
            server: Some((admin, name)),
        })
    }

    /// A store on this database, as a host would open it: a second call is a second host.
    pub async fn open(&self) -> Arc<dyn Store> {
        self.try_open().await.unwrap()
    }

    pub async fn try_open(&self) -> Result<Arc<dyn Store>, host::store::StoreError> {
        let url = DatabaseUrl::parse(&self.url, self.dir.path()).unwrap();
        host::store::open(&url, &pool_settings(), Default::default()).await
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
    /// How many connections to this database (other than the one asking) are inside a
    /// transaction, as the server sees them: PostgreSQL's `pg_stat_activity`, InnoDB's
    /// `innodb_trx`. SQLite has no server and no connection of another process to ask: 0.
    ///
    /// InnoDB lists a transaction from its first statement on, so a bare `BEGIN` is not seen
    /// until the connection runs something inside it.
    pub async fn open_transactions(&self) -> u64 {
        let sql = match self.backend {
            Backend::Sqlite => return 0,
            Backend::Postgres => {
                "SELECT CAST(count(*) AS BIGINT) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND xact_start IS NOT NULL"
            }
            Backend::MySql => {
                "SELECT CAST(count(*) AS SIGNED) FROM information_schema.innodb_trx t \
                 JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
                 WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()"
            }
        };
        let mut conn = AnyConnection::connect(&self.url).await.unwrap();
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        let _ = conn.close().await;
        count as u64
    }

    /// Waits up to `within` for every connection to this database to be outside a
    /// transaction (connections come back to a pool, and a dropped transaction is rolled back,
    /// a moment after their request ended); returns the count last seen.
    pub async fn open_transactions_after(&self, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let open = self.open_transactions().await;
            if open == 0 || tokio::time::Instant::now() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.server.take() else {
            return;
        };
        // Drop may run inside a test's runtime, which cannot block: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = AnyConnection::connect(&admin).await?;
                // Whatever still holds the database (a failed test's pool, a transaction it
                // left open) would make the drop wait for ever: PostgreSQL ends those
                // sessions itself with FORCE; on MariaDB they are killed first.
                let force = if admin.starts_with("postgres") {
                    " WITH (FORCE)"
                } else {
                    let holders: Vec<i64> = sqlx::query_scalar(
                        "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
                         WHERE db = ? AND id <> CONNECTION_ID()",
                    )
                    .bind(&name)
                    .fetch_all(&mut conn)
                    .await?;
                    for id in holders {
                        // One may have gone meanwhile.
                        let _ = conn.execute(format!("KILL {id}").as_str()).await;
                    }
                    ""
                };
                conn.execute(format!("DROP DATABASE IF EXISTS {name}{force}").as_str())
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the scratch database: {e}");
        }
    }
}

/// Small timeouts: a test that waits on a lock fails in seconds, not minutes.
pub fn pool_settings() -> PoolSettings {
    PoolSettings {
        size: 8,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
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
