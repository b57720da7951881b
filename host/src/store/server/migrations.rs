//! The server store's schema versions: SQL files in `host/migrations/<backend>/`, built into
//! the binary, applied at start by sqlx's migrator.
//!
//! Several hosts may start at once: the migrator holds the database's migration lock
//! (`pg_advisory_lock` on PostgreSQL, `GET_LOCK` on MariaDB) while it works, so one applies
//! each version and the others find it applied. A database that has a version this host does
//! not know was migrated by a newer host and is refused, naming both versions.

use super::Backend;
use crate::store::StoreError;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::AnyConnection;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// One schema version: number, description, SQL.
type Version = (i64, &'static str, &'static str);

const POSTGRES: &[Version] = &[
    (
        1,
        "players, module data and sessions",
        include_str!("../../../migrations/postgres/0001_players.sql"),
    ),
    (
        2,
        "the append-only audit log",
        include_str!("../../../migrations/postgres/0002_audit.sql"),
    ),
    (
        3,
        "the player's version, for optimistic turns",
        include_str!("../../../migrations/postgres/0003_player_version.sql"),
    ),
    (
        4,
        "the replies of keyed commands, for safe retries",
        include_str!("../../../migrations/postgres/0004_idempotency_keys.sql"),
    ),
    (
        5,
        "the fleet's module releases and hosts",
        include_str!("../../../migrations/postgres/0005_fleet.sql"),
    ),
    (
        6,
        "pushes, their counter and the modules' groups",
        include_str!("../../../migrations/postgres/0006_pushes.sql"),
    ),
];

const MYSQL: &[Version] = &[
    (
        1,
        "players, module data and sessions",
        include_str!("../../../migrations/mysql/0001_players.sql"),
    ),
    (
        2,
        "the append-only audit log",
        include_str!("../../../migrations/mysql/0002_audit.sql"),
    ),
    (
        3,
        "the player's version, for optimistic turns",
        include_str!("../../../migrations/mysql/0003_player_version.sql"),
    ),
    (
        4,
        "the replies of keyed commands, for safe retries",
        include_str!("../../../migrations/mysql/0004_idempotency_keys.sql"),
    ),
    (
        5,
        "the fleet's module releases and hosts",
        include_str!("../../../migrations/mysql/0005_fleet.sql"),
    ),
    (
        6,
        "pushes, their counter and the modules' groups",
        include_str!("../../../migrations/mysql/0006_pushes.sql"),
    ),
];

/// The versions built into this binary for one backend.
#[derive(Debug)]
struct Embedded(&'static [Version]);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = self
            .0
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The newest schema version this host knows for `backend`.
fn latest(backend: Backend) -> i64 {
    versions(backend).last().map_or(0, |v| v.0)
}

fn versions(backend: Backend) -> &'static [Version] {
    match backend {
        Backend::Postgres => POSTGRES,
        Backend::MySql => MYSQL,
    }
}

/// Brings the schema up to date, waiting for any other host that is doing the same.
pub async fn run(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    let migrator = Migrator::new(Embedded(versions(backend)))
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot read the migrations: {e}")))?;
    migrator.run(conn).await.map_err(|e| match e {
        MigrateError::VersionMissing(found) => StoreError::SchemaTooNew {
            found,
            known: latest(backend),
        },
        other => StoreError::Unavailable(format!("cannot migrate the schema: {other}")),
    })
}
