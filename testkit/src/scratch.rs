//! Scratch databases on the PostgreSQL and MariaDB servers that the tests and the bench are
//! pointed at: [`ScratchDatabase`], a database of its own, created empty and dropped with the
//! value (whatever still holds it is ended first), and [`DatabaseServer::admin_url`], where the
//! servers are. SQLite needs none of this: a file in a temporary folder is its scratch
//! database. A URL is only ever shown through [`redacted`].

use sqlx::{AnyConnection, Connection, Executor};
use std::fmt;
use std::time::Duration;

/// How long a server may take to accept a connection before it counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long creating or dropping a scratch database may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A database server that scratch databases are made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseServer {
    Postgres,
    /// MariaDB, or MySQL.
    MySql,
}

impl DatabaseServer {
    /// The environment variable that gives this server's admin URL: `<prefix>_POSTGRES` or
    /// `<prefix>_MYSQL` (`GAME_TEST_POSTGRES`, `GAME_BENCH_MYSQL`, ...).
    pub fn variable(self, prefix: &str) -> String {
        match self {
            DatabaseServer::Postgres => format!("{prefix}_POSTGRES"),
            DatabaseServer::MySql => format!("{prefix}_MYSQL"),
        }
    }

    /// Where the server is when the variable is unset: this machine, its usual port, the
    /// administrator without a password.
    pub fn default_admin_url(self) -> &'static str {
        match self {
            DatabaseServer::Postgres => "postgres://postgres@127.0.0.1:5432/postgres",
            DatabaseServer::MySql => "mysql://root@127.0.0.1:3306/mysql",
        }
    }

    /// The server's admin URL (one that may `CREATE DATABASE`): the variable's value (see
    /// [`DatabaseServer::variable`]), or the default when it is unset or empty; the reason
    /// when it is `off`.
    pub fn admin_url(self, prefix: &str) -> Result<String, String> {
        let variable = self.variable(prefix);
        let value = std::env::var(&variable).ok();
        chosen(value, &variable, self.default_admin_url())
    }
}

/// The admin URL that `variable`'s `value` gives.
fn chosen(value: Option<String>, variable: &str, default: &str) -> Result<String, String> {
    match value {
        Some(value) if value == "off" => Err(format!("{variable}=off")),
        Some(value) if !value.is_empty() => Ok(value),
        _ => Ok(default.to_owned()),
    }
}

/// A database of its own on a server; dropped (`DROP DATABASE`) with this value.
pub struct ScratchDatabase {
    admin: String,
    name: String,
    url: String,
}

/// Why no scratch database was made.
#[derive(Debug)]
pub enum ScratchError {
    /// The server does not answer (or the admin URL is not one): its tests or rows are
    /// skipped.
    Unreachable(String),
    /// It answered, but did not create the database.
    Refused(String),
}

impl fmt::Display for ScratchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScratchError::Unreachable(why) | ScratchError::Refused(why) => f.write_str(why),
        }
    }
}

impl ScratchDatabase {
    /// Creates the empty database `name` (dropping one of that name first) on the server of
    /// `admin`, an admin URL.
    pub async fn create(admin: &str, name: &str) -> Result<ScratchDatabase, ScratchError> {
        let shown = redacted(admin);
        let mut url = url::Url::parse(admin)
            .map_err(|e| ScratchError::Unreachable(format!("{shown} is not a URL: {e}")))?;
        url.set_path(name);
        sqlx::any::install_default_drivers();
        let mut conn =
            match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(admin)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    return Err(ScratchError::Unreachable(format!(
                        "{shown} does not answer: {e}"
                    )))
                }
                Err(_) => {
                    return Err(ScratchError::Unreachable(format!(
                        "{shown} does not answer: no connection in {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )))
                }
            };
        let created = tokio::time::timeout(STATEMENT_TIMEOUT, async {
            conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await?;
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
        })
        .await;
        let _ = conn.close().await;
        let refused = |why: String| {
            ScratchError::Refused(format!("CREATE DATABASE {name} on {shown}: {why}"))
        };
        match created {
            Ok(Ok(_)) => Ok(ScratchDatabase {
                admin: admin.to_owned(),
                name: name.to_owned(),
                url: url.to_string(),
            }),
            Ok(Err(e)) => Err(refused(e.to_string())),
            Err(_) => Err(refused(format!(
                "no answer in {} s",
                STATEMENT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The database's URL: what `store.url` takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name on its server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's admin URL, as given to [`ScratchDatabase::create`].
    pub fn admin_url(&self) -> &str {
        &self.admin
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a test's or the bench's runtime, which cannot block: a thread
        // of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                tokio::time::timeout(STATEMENT_TIMEOUT, drop_database(&admin, &name))
                    .await
                    .map_err(|_| format!("no answer in {} s", STATEMENT_TIMEOUT.as_secs()))?
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        let why = match dropped {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => "it panicked".to_owned(),
        };
        eprintln!(
            "could not drop the scratch database {} on {}: {why}",
            self.name,
            redacted(&self.admin)
        );
    }
}

/// `DROP DATABASE name` on the server of `admin`. Whatever still holds the database (a failed
/// test's pool, a transaction it left open, a backend that has not noticed its host is gone)
/// would make the drop wait for ever: PostgreSQL ends those sessions itself with `FORCE`; on
/// MariaDB they are killed first.
async fn drop_database(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = AnyConnection::connect(admin).await?;
    let force = if admin.starts_with("postgres") {
        " WITH (FORCE)"
    } else {
        let holders: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
             WHERE db = ? AND id <> CONNECTION_ID()",
        )
        .bind(name)
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
}

/// `url` as it may be shown: its password, if any, as `***` (the host's own redaction of
/// `store.url`).
pub fn redacted(url: &str) -> String {
    host::store::url::redact_text(url)
}

#[cfg(test)]
mod tests;
