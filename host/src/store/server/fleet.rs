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
    parse_tables, publish_states, tables_text, to_prune, Desired, FleetStore, HostReport,
    Published, Release, RolledBack, NO_PLAYER,
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
    desired_and_previous: String,
    upsert_desired: String,
    roll_back: String,
    bump_changes: String,
    releases_of: String,
    delete_release: String,
    changes: String,
    desired: String,
    release: String,
    upsert_host: String,
    hosts: String,
}

const INSERT_RELEASE: &str = "INSERT INTO module_releases (release_id, module, version, library_zlib, signature, tables, published_at, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_DESIRED: &str =
    "INSERT INTO module_desired (module, release_id, previous_id, changed_at) VALUES ($1, $2, $3, $4)";
const INSERT_HOST: &str = "INSERT INTO fleet_hosts (host_id, address, binary_version, started_at, last_seen, modules) VALUES ($1, $2, $3, $4, $5, $6)";

impl FleetSql {
    pub(super) fn new(backend: Backend) -> FleetSql {
        let (insert_release, upsert_desired, upsert_host) = match backend {
            Backend::Postgres => (
                format!("{INSERT_RELEASE} ON CONFLICT (release_id) DO UPDATE SET published_at = excluded.published_at"),
                format!("{INSERT_DESIRED} ON CONFLICT (module) DO UPDATE SET release_id = excluded.release_id, previous_id = excluded.previous_id, changed_at = excluded.changed_at"),
                format!("{INSERT_HOST} ON CONFLICT (host_id) DO UPDATE SET address = excluded.address, binary_version = excluded.binary_version, started_at = excluded.started_at, last_seen = excluded.last_seen, modules = excluded.modules"),
            ),
            Backend::MySql => (
                format!("{INSERT_RELEASE} ON DUPLICATE KEY UPDATE published_at = VALUES(published_at)"),
                format!("{INSERT_DESIRED} ON DUPLICATE KEY UPDATE release_id = VALUES(release_id), previous_id = VALUES(previous_id), changed_at = VALUES(changed_at)"),
                format!("{INSERT_HOST} ON DUPLICATE KEY UPDATE address = VALUES(address), binary_version = VALUES(binary_version), started_at = VALUES(started_at), last_seen = VALUES(last_seen), modules = VALUES(modules)"),
            ),
        };
        let sql = FleetSql {
            lock_changes: "SELECT counter FROM fleet_changes WHERE id = 1 FOR UPDATE".into(),
            insert_release,
            desired_of: "SELECT release_id FROM module_desired WHERE module = $1".into(),
            desired_and_previous: "SELECT release_id, previous_id FROM module_desired WHERE module = $1".into(),
            upsert_desired,
            roll_back: "UPDATE module_desired SET release_id = $1, previous_id = NULL, changed_at = $2 WHERE module = $3".into(),
            bump_changes: "UPDATE fleet_changes SET counter = counter + 1 WHERE id = 1".into(),
            releases_of: "SELECT release_id FROM module_releases WHERE module = $1 ORDER BY published_at DESC, release_id".into(),
            delete_release: "DELETE FROM module_releases WHERE release_id = $1".into(),
            changes: "SELECT counter FROM fleet_changes WHERE id = 1".into(),
            desired: "SELECT module, release_id, previous_id, changed_at FROM module_desired ORDER BY module".into(),
            release: "SELECT module, version, library_zlib, signature, tables FROM module_releases WHERE release_id = $1".into(),
            upsert_host,
            hosts: "SELECT host_id, address, binary_version, started_at, last_seen, modules FROM fleet_hosts ORDER BY host_id".into(),
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
            desired_and_previous: q(self.desired_and_previous),
            upsert_desired: q(self.upsert_desired),
            roll_back: q(self.roll_back),
            bump_changes: q(self.bump_changes),
            releases_of: q(self.releases_of),
            delete_release: q(self.delete_release),
            changes: q(self.changes),
            desired: q(self.desired),
            release: q(self.release),
            upsert_host: q(self.upsert_host),
            hosts: q(self.hosts),
        }
    }
}

impl ServerStore {
    /// The publish transaction's body, on `conn` inside its transaction.
    async fn publish_in(
        &self,
        conn: &mut Lease,
        release: &Release,
        note: &AuditNote,
        keep: usize,
    ) -> Result<Published, StoreError> {
        let sql = &self.fleet_sql;
        conn.fetch_one(sqlx::query(&sql.lock_changes)).await?;
        let tables = tables_text(&release.tables);
        conn.execute(
            sqlx::query(&sql.insert_release)
                .bind(release.id.as_str())
                .bind(release.module.as_str())
                .bind(release.version.as_str())
                .bind(release.library_zlib.clone())
                .bind(release.signature.clone())
                .bind(tables)
                .bind(note.at_ms)
                .bind(note.operator.as_str()),
        )
        .await?;
        let before = match conn
            .fetch_optional(sqlx::query(&sql.desired_of).bind(release.module.as_str()))
            .await?
        {
            Some(row) => Some(text(&row, 0)?),
            None => None,
        };
        if before.as_deref() == Some(release.id.as_str()) {
            return Ok(Published::AlreadyDesired);
        }
        conn.execute(
            sqlx::query(&sql.upsert_desired)
                .bind(release.module.as_str())
                .bind(release.id.as_str())
                .bind(before.clone())
                .bind(note.at_ms),
        )
        .await?;
        conn.execute(sqlx::query(&sql.bump_changes)).await?;
        let newest_first = conn
            .fetch_all(sqlx::query(&sql.releases_of).bind(release.module.as_str()))
            .await?
            .iter()
            .map(|row| text(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        for id in to_prune(&newest_first, keep, &release.id, before.as_deref()) {
            conn.execute(sqlx::query(&sql.delete_release).bind(id))
                .await?;
        }
        let (state_before, state_after) =
            publish_states(&release.module, before.as_deref(), &release.id);
        self.append_audit(conn, "publish", NO_PLAYER, note, state_before, state_after)
            .await?;
        Ok(Published::Desired { previous: before })
    }
}

impl ServerStore {
    /// The rollback transaction's body, on `conn` inside its transaction.
    async fn roll_back_in(
        &self,
        conn: &mut Lease,
        module: &str,
        note: &AuditNote,
    ) -> Result<Option<RolledBack>, StoreError> {
        let sql = &self.fleet_sql;
        conn.fetch_one(sqlx::query(&sql.lock_changes)).await?;
        let Some(row) = conn
            .fetch_optional(sqlx::query(&sql.desired_and_previous).bind(module))
            .await?
        else {
            return Ok(None);
        };
        let (from, to) = (text(&row, 0)?, optional_text(&row, 1)?);
        let Some(to) = to else {
            return Ok(None);
        };
        conn.execute(
            sqlx::query(&sql.roll_back)
                .bind(to.as_str())
                .bind(note.at_ms)
                .bind(module),
        )
        .await?;
        conn.execute(sqlx::query(&sql.bump_changes)).await?;
        let (state_before, state_after) = publish_states(module, Some(&from), &to);
        self.append_audit(conn, "rollback", NO_PLAYER, note, state_before, state_after)
            .await?;
        Ok(Some(RolledBack { from, to }))
    }
}

#[async_trait]
impl FleetStore for ServerStore {
    async fn publish(
        &self,
        release: &Release,
        note: &AuditNote,
        keep: usize,
    ) -> Result<Published, StoreError> {
        let mut conn = self.conn().await?;
        conn.start_transaction().await?;
        let published = self.publish_in(&mut conn, release, note, keep).await;
        // On an error the rollback is best effort: a connection left unsettled is closed by
        // the pool, which rolls it back too.
        let ended = conn.end_transaction(published.is_ok()).await;
        let published = published?;
        ended?;
        Ok(published)
    }

    async fn roll_back(
        &self,
        module: &str,
        note: &AuditNote,
    ) -> Result<Option<RolledBack>, StoreError> {
        let mut conn = self.conn().await?;
        conn.start_transaction().await?;
        let rolled = self.roll_back_in(&mut conn, module, note).await;
        let ended = conn.end_transaction(rolled.is_ok()).await;
        let rolled = rolled?;
        ended?;
        Ok(rolled)
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
            .map(|row| {
                Ok(Desired {
                    module: text(row, 0)?,
                    release_id: text(row, 1)?,
                    previous_id: optional_text(row, 2)?,
                    changed_at_ms: int(row, 3)?,
                })
            })
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
                .bind(report.modules.as_str()),
        )
        .await?;
        Ok(())
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
                })
            })
            .collect()
    }
}

/// A binary column, `None` if NULL.
fn bytes(row: &AnyRow, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
    row.try_get::<Option<Vec<u8>>, _>(index).map_err(db_error)
}
