//! The fleet's tables on a server store ([`FleetStore`]): the releases every host of the
//! fleet takes its modules from.
//!
//! A publish is one transaction: it locks the one `fleet_changes` row first, so publishes
//! from several operators queue up there rather than deadlock, stores the release, makes it
//! desired, bumps the counter, prunes, and writes its audit row. Dropped midway, the lease is
//! unsettled and the pool closes it, which rolls it all back.

use super::pool::Lease;
use super::rows::{db_error, int, optional_text, text};
use super::sql::question_marks;
use super::{Backend, ServerStore};
use crate::store::fleet::{
    audit_states, decide, parse_tables, tables_text, to_prune, Desired, FleetChange, FleetOutcome,
    FleetStore, HostReport, Release, Retention, CHANGE_COUNTS, NO_PLAYER,
};
use crate::store::{AuditNote, StoreError};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The fleet's statements for one backend.
#[derive(Debug)]
pub(super) struct FleetSql {
    lock_changes: String,
    insert_release: String,
    desired_of: String,
    upsert_desired: String,
    bump_changes: String,
    releases_of: String,
    delete_release: String,
    changes: String,
    desired: String,
    release: String,
    upsert_host: String,
    hosts: String,
    /// PostgreSQL: notifies the followers, at commit ([`super::notices`]).
    notify: Option<String>,
}

const DESIRED_COLUMNS: &str =
    "module, release_id, previous_id, canary_id, canary_percent, watch_until, changed_at";
const INSERT_RELEASE: &str = "INSERT INTO module_releases (release_id, module, version, library_zlib, signature, tables, published_at, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_HOST: &str = "INSERT INTO fleet_hosts (host_id, address, binary_version, started_at, last_seen, modules, players_online) VALUES ($1, $2, $3, $4, $5, $6, $7)";

impl FleetSql {
    pub(super) fn new(backend: Backend) -> FleetSql {
        let insert_desired = format!(
            "INSERT INTO module_desired ({DESIRED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        let (insert_release, upsert_desired, upsert_host) = match backend {
            Backend::Postgres => (
                format!("{INSERT_RELEASE} ON CONFLICT (release_id) DO UPDATE SET published_at = excluded.published_at"),
                format!("{insert_desired} ON CONFLICT (module) DO UPDATE SET release_id = excluded.release_id, previous_id = excluded.previous_id, canary_id = excluded.canary_id, canary_percent = excluded.canary_percent, watch_until = excluded.watch_until, changed_at = excluded.changed_at"),
                format!("{INSERT_HOST} ON CONFLICT (host_id) DO UPDATE SET address = excluded.address, binary_version = excluded.binary_version, started_at = excluded.started_at, last_seen = excluded.last_seen, modules = excluded.modules, players_online = excluded.players_online"),
            ),
            Backend::MySql => (
                format!("{INSERT_RELEASE} ON DUPLICATE KEY UPDATE published_at = VALUES(published_at)"),
                format!("{insert_desired} ON DUPLICATE KEY UPDATE release_id = VALUES(release_id), previous_id = VALUES(previous_id), canary_id = VALUES(canary_id), canary_percent = VALUES(canary_percent), watch_until = VALUES(watch_until), changed_at = VALUES(changed_at)"),
                format!("{INSERT_HOST} ON DUPLICATE KEY UPDATE address = VALUES(address), binary_version = VALUES(binary_version), started_at = VALUES(started_at), last_seen = VALUES(last_seen), modules = VALUES(modules), players_online = VALUES(players_online)"),
            ),
        };
        let sql = FleetSql {
            lock_changes: "SELECT counter FROM fleet_changes WHERE id = 1 FOR UPDATE".into(),
            insert_release,
            desired_of: format!("SELECT {DESIRED_COLUMNS} FROM module_desired WHERE module = $1"),
            upsert_desired,
            bump_changes: "UPDATE fleet_changes SET counter = counter + 1 WHERE id = 1".into(),
            releases_of: "SELECT release_id FROM module_releases WHERE module = $1 ORDER BY published_at DESC, release_id".into(),
            delete_release: "DELETE FROM module_releases WHERE release_id = $1".into(),
            changes: "SELECT counter FROM fleet_changes WHERE id = 1".into(),
            desired: format!("SELECT {DESIRED_COLUMNS} FROM module_desired ORDER BY module"),
            release: "SELECT module, version, library_zlib, signature, tables FROM module_releases WHERE release_id = $1".into(),
            upsert_host,
            hosts: "SELECT host_id, address, binary_version, started_at, last_seen, modules, players_online FROM fleet_hosts ORDER BY host_id".into(),
            notify: (backend == Backend::Postgres)
                .then(|| format!("SELECT pg_notify('{}', '')", super::notices::FLEET_CHANNEL)),
        };
        match backend {
            Backend::Postgres => sql,
            Backend::MySql => sql.with_question_marks(),
        }
    }

    fn with_question_marks(self) -> FleetSql {
        let q = |text: String| question_marks(&text);
        FleetSql {
            lock_changes: q(self.lock_changes),
            insert_release: q(self.insert_release),
            desired_of: q(self.desired_of),
            upsert_desired: q(self.upsert_desired),
            bump_changes: q(self.bump_changes),
            releases_of: q(self.releases_of),
            delete_release: q(self.delete_release),
            changes: q(self.changes),
            desired: q(self.desired),
            release: q(self.release),
            upsert_host: q(self.upsert_host),
            hosts: q(self.hosts),
            notify: self.notify,
        }
    }
}

/// A row of `module_desired`, in [`DESIRED_COLUMNS`]' order.
fn desired_row(row: &AnyRow) -> Result<Desired, StoreError> {
    Ok(Desired {
        module: text(row, 0)?,
        release_id: text(row, 1)?,
        previous_id: optional_text(row, 2)?,
        canary_id: optional_text(row, 3)?,
        canary_percent: u8::try_from(int(row, 4)?).unwrap_or(0),
        watch_until_ms: int(row, 5)?,
        changed_at_ms: int(row, 6)?,
    })
}

impl ServerStore {
    /// [`FleetStore::change`]'s body, on `conn` inside its transaction.
    async fn change_in(
        &self,
        conn: &mut Lease,
        module: &str,
        change: &FleetChange,
        release: Option<&Release>,
        note: &AuditNote,
        retention: Retention,
    ) -> Result<FleetOutcome, StoreError> {
        let sql = &self.fleet_sql;
        // Changes of the fleet queue here, whichever module they change.
        conn.fetch_one(sqlx::query(&sql.lock_changes)).await?;
        if let Some(release) = release {
            conn.execute(
                sqlx::query(&sql.insert_release)
                    .bind(release.id.as_str())
                    .bind(release.module.as_str())
                    .bind(release.version.as_str())
                    .bind(release.library_zlib.clone())
                    .bind(release.signature.clone())
                    .bind(tables_text(&release.tables))
                    .bind(note.at_ms)
                    .bind(note.operator.as_str()),
            )
            .await?;
        }
        let before = match conn
            .fetch_optional(sqlx::query(&sql.desired_of).bind(module))
            .await?
        {
            Some(row) => Some(desired_row(&row)?),
            None => None,
        };
        let published = release.map(|r| r.id.as_str());
        let decided = decide(
            module,
            before.as_ref(),
            change,
            published,
            note.at_ms,
            retention.watch_ms,
        );
        let (after, action) = match decided {
            Ok(decided) => decided,
            // Nothing else changes; a release stored above stays stored (it is by identity).
            Err(declined) => return Ok(declined.into()),
        };
        conn.execute(
            sqlx::query(&sql.upsert_desired)
                .bind(after.module.as_str())
                .bind(after.release_id.as_str())
                .bind(after.previous_id.clone())
                .bind(after.canary_id.clone())
                .bind(i64::from(after.canary_percent))
                .bind(after.watch_until_ms)
                .bind(after.changed_at_ms),
        )
        .await?;
        conn.execute(sqlx::query(&sql.bump_changes)).await?;
        if let Some(notify) = &sql.notify {
            conn.execute(sqlx::query(notify)).await?;
        }
        let newest_first = conn
            .fetch_all(sqlx::query(&sql.releases_of).bind(module))
            .await?
            .iter()
            .map(|row| text(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        for id in to_prune(&newest_first, retention.keep_releases, &after) {
            conn.execute(sqlx::query(&sql.delete_release).bind(id))
                .await?;
        }
        let (state_before, state_after) = audit_states(before.as_ref(), &after);
        self.append_audit(conn, action, NO_PLAYER, note, state_before, state_after)
            .await?;
        Ok(FleetOutcome::Changed {
            before: before.map(Box::new),
            after: Box::new(after),
        })
    }
}

#[async_trait]
impl FleetStore for ServerStore {
    async fn change(
        &self,
        module: &str,
        change: &FleetChange,
        release: Option<&Release>,
        note: &AuditNote,
        retention: Retention,
    ) -> Result<FleetOutcome, StoreError> {
        let mut conn = self.conn().await?;
        conn.start_transaction().await?;
        let outcome = self
            .change_in(&mut conn, module, change, release, note, retention)
            .await;
        // On an error the rollback is best effort: a connection left unsettled is closed by
        // the pool, which rolls it back too.
        let ended = conn.end_transaction(outcome.is_ok()).await;
        let outcome = outcome?;
        ended?;
        Ok(outcome)
    }

    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.notices
            .as_ref()
            .map(|notices| notices.subscribe(super::notices::FLEET_CHANNEL))
    }

    async fn fleet_changes(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let row = conn.fetch_one(sqlx::query(&self.fleet_sql.changes)).await?;
        int(&row, 0)
    }

    async fn desired(&self) -> Result<Vec<Desired>, StoreError> {
        let mut conn = self.conn().await?;
        conn.fetch_all(sqlx::query(&self.fleet_sql.desired))
            .await?
            .iter()
            .map(desired_row)
            .collect()
    }

    async fn release(&self, id: &str) -> Result<Option<Release>, StoreError> {
        let mut conn = self.conn().await?;
        let Some(row) = conn
            .fetch_optional(sqlx::query(&self.fleet_sql.release).bind(id))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Release {
            id: id.to_owned(),
            module: text(&row, 0)?,
            version: text(&row, 1)?,
            library_zlib: bytes(&row, 2)?.unwrap_or_default(),
            signature: bytes(&row, 3)?,
            tables: parse_tables(id, optional_text(&row, 4)?)?,
        }))
    }

    async fn report_host(&self, report: &HostReport) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        conn.execute(
            sqlx::query(&self.fleet_sql.upsert_host)
                .bind(report.host_id.as_str())
                .bind(report.address.as_str())
                .bind(report.binary_version.as_str())
                .bind(report.started_at_ms)
                .bind(report.last_seen_ms)
                .bind(report.modules.as_str())
                .bind(report.players_online),
        )
        .await?;
        Ok(())
    }

    async fn change_counts(&self) -> Result<Vec<(String, bool, u64)>, StoreError> {
        let mut conn = self.conn().await?;
        conn.fetch_all(sqlx::query(CHANGE_COUNTS))
            .await?
            .iter()
            .map(|row| {
                Ok((
                    text(row, 0)?,
                    int(row, 1)? == 1,
                    u64::try_from(int(row, 2)?).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn hosts(&self) -> Result<Vec<HostReport>, StoreError> {
        let mut conn = self.conn().await?;
        conn.fetch_all(sqlx::query(&self.fleet_sql.hosts))
            .await?
            .iter()
            .map(|row| {
                Ok(HostReport {
                    host_id: text(row, 0)?,
                    address: text(row, 1)?,
                    binary_version: text(row, 2)?,
                    started_at_ms: int(row, 3)?,
                    last_seen_ms: int(row, 4)?,
                    modules: text(row, 5)?,
                    players_online: int(row, 6)?,
                })
            })
            .collect()
    }
}

/// A binary column, `None` if NULL.
fn bytes(row: &AnyRow, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
    row.try_get::<Option<Vec<u8>>, _>(index).map_err(db_error)
}
