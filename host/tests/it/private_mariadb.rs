//! A MariaDB server of the test's own, with or without TLS.
//!
//! The machine's shared MariaDB (3306) has TLS off and other tests use it at the same time,
//! so a test that needs TLS gets a throwaway instance instead: `mariadb-install-db` into a
//! temporary folder, then `mariadbd` on a free port of 127.0.0.1, its unix socket, pid file
//! and error log inside the folder, `--no-defaults` so that nothing of the shared server's
//! configuration applies. `root` connects from 127.0.0.1 without a password
//! (`--auth-root-authentication-method=normal`). When the tests run as root, mariadbd runs
//! as the `mysql` OS user (`--user=mysql`), which owns the folder. Dropping the value kills
//! the server (its data is thrown away anyway) and removes the folder.
//!
//! Without the MariaDB programs the test is skipped the way `databases.rs` skips a server that
//! does not answer, or fails under `GAME_TEST_REQUIRE_DATABASES=1`.

use crate::databases::{databases_required, report_skipped};
use crate::db_tls::ServerTls;
use crate::private_postgres::{create_database_on, effective_uid, free_port, os_id, which};
use sqlx::{AnyConnection, Connection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// What the skip report calls these tests.
const SKIP_NAME: &str = "private MariaDB (mariadb-install-db, mariadbd)";

/// How long the server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A MariaDB instance of the test's own; killed and removed when dropped.
pub struct PrivateMariaDb {
    /// `data/`, `error.log`, the socket and the server's certificate.
    dir: TempDir,
    port: u16,
    server: Child,
}

impl PrivateMariaDb {
    /// A new, running instance; with `tls`, it takes TLS connections only
    /// (`--require-secure-transport`), so whoever it serves speaks TLS. `None` if the test
    /// must be skipped (said on stderr). Panics if MariaDB is there but will not start.
    pub async fn start(tls: Option<&ServerTls>) -> Option<PrivateMariaDb> {
        let (Some(install), Some(mariadbd)) = (which("mariadb-install-db"), find_mariadbd()) else {
            return skip("no mariadb-install-db and mariadbd (apt-get install mariadb-server)");
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = if effective_uid() == Some(0) {
            // mariadbd refuses to run as root without --user.
            let (Some(uid), Some(gid)) = (os_id("-u", "mysql"), os_id("-g", "mysql")) else {
                return skip(
                    "the tests run as root and there is no `mysql` OS user to run MariaDB as",
                );
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the instance folder to mysql");
            Some((uid, gid))
        } else {
            None
        };
        let data = dir.path().join("data");
        install_system_tables(&install, &data, owner.is_some());
        let port = free_port();
        let mut serve = Command::new(mariadbd);
        serve
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--socket={}",
                dir.path().join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ));
        if owner.is_some() {
            serve.arg("--user=mysql");
        }
        if let Some(tls) = tls {
            let (cert, key) = tls.install(dir.path(), owner);
            serve
                .arg(format!("--ssl-cert={}", cert.display()))
                .arg(format!("--ssl-key={}", key.display()))
                .arg("--require-secure-transport=ON");
        }
        let server = serve
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let mut mariadb = PrivateMariaDb { dir, port, server };
        mariadb.wait_ready(tls.is_some()).await;
        Some(mariadb)
    }

    /// A URL for `root` on database `db`, with `params` (`ssl-mode=...`) if not empty.
    pub fn url(&self, db: &str, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!("mysql://root@127.0.0.1:{}/{db}{query}", self.port)
    }

    /// Creates database `name` (connecting with `params`).
    pub async fn create_database(&self, name: &str, params: &str) {
        create_database_on(&self.url("mysql", params), name, || self.log_tail()).await;
    }

    /// The end of the server's error log, for failure messages.
    pub fn log_tail(&self) -> String {
        let path = self.dir.path().join("error.log");
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- the end of {} ---\n{tail}", path.display())
    }

    /// Waits until the server answers a connection (over TLS if it requires it); panics with
    /// its log if it exits or takes longer than [`START_DEADLINE`].
    async fn wait_ready(&mut self, tls: bool) {
        sqlx::any::install_default_drivers();
        let url = self.url("mysql", if tls { "ssl-mode=REQUIRED" } else { "" });
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if let Ok(conn) = AnyConnection::connect(&url).await {
                let _ = conn.close().await;
                return;
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                panic!("mariadbd exited ({status})\n{}", self.log_tail());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mariadbd did not answer within {START_DEADLINE:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        // Its data is thrown away with the folder: no need for a clean shutdown.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `mariadbd` on PATH or in /usr/sbin (not on a non-root PATH in Debian).
fn find_mariadbd() -> Option<PathBuf> {
    which("mariadbd").or_else(|| {
        let path = PathBuf::from("/usr/sbin/mariadbd");
        path.is_file().then_some(path)
    })
}

/// Skips the test (said on stderr and in the report), or fails it if databases are required.
fn skip(why: &str) -> Option<PrivateMariaDb> {
    if databases_required() {
        panic!("the {SKIP_NAME} is required (GAME_TEST_REQUIRE_DATABASES=1): {why}");
    }
    report_skipped(SKIP_NAME, why);
    None
}

/// Runs `mariadb-install-db` into `data`. One at a time in this process, and up to three
/// times on a fresh folder: under a full test run it failed once in CI, saying only that the
/// system tables were not installed (the bootstrap's own words go nowhere), and never alone.
fn install_system_tables(install: &Path, data: &Path, as_mysql: bool) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut said = String::new();
    for attempt in 1..=3 {
        let _ = std::fs::remove_dir_all(data);
        let mut setup = Command::new(install);
        setup
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if as_mysql {
            setup.arg("--user=mysql");
        }
        let output = setup
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        if output.status.success() {
            return;
        }
        said.push_str(&format!(
            "attempt {attempt}: {}{}\n",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    panic!("mariadb-install-db failed three times:\n{said}");
}
