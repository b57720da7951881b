//! How a host connects to a server database: the pool, its hooks, and the session settings
//! of each new connection.

use super::Backend;
use super::PoolSettings;
use crate::store::{DatabaseUrl, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};
use std::sync::Arc;
use std::time::Duration;

/// A pooled connection idle longer than this is pinged before it is used, and replaced if
/// it does not answer.
const PING_IF_IDLE: Duration = Duration::from_secs(5);

/// A pool on `text` (the URL `url` shows redacted): connected within the connect timeout.
pub(super) async fn pool(
    text: &str,
    url: &DatabaseUrl,
    backend: Backend,
    settings: &PoolSettings,
) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let setup = Arc::new(session_setup(backend, settings.statement_timeout));
    AnyPoolOptions::new()
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
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to {url}: {e}")))
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
