//! The fleet's tables on the embedded store ([`FleetStore`]): a single host's releases.

use super::operator::append;
use super::{db_error, write_transaction, SqliteStore};
use crate::store::fleet::{
    parse_tables, publish_states, tables_text, to_prune, Desired, FleetStore, HostReport,
    Published, Release, RolledBack, NO_PLAYER,
};
use crate::store::{AuditNote, StoreError};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl FleetStore for SqliteStore {
    async fn publish(
        &self,
        release: &Release,
        note: &AuditNote,
        keep: usize,
    ) -> Result<Published, StoreError> {
        let (release, note) = (release.clone(), note.clone());
        self.with_conn(move |conn| {
            let tx = write_transaction(conn)?;
            tx.execute(
                "INSERT INTO module_releases (release_id, module, version, library_zlib, signature, tables, published_at, published_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (release_id) DO UPDATE SET published_at = excluded.published_at",
                params![
                    release.id,
                    release.module,
                    release.version,
                    release.library_zlib,
                    release.signature,
                    tables_text(&release.tables),
                    note.at_ms,
                    note.operator
                ],
            )
            .map_err(db_error)?;
            let before: Option<String> = tx
                .query_row(
                    "SELECT release_id FROM module_desired WHERE module = ?1",
                    [&release.module],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            if before.as_deref() == Some(release.id.as_str()) {
                tx.commit().map_err(db_error)?;
                return Ok(Published::AlreadyDesired);
            }
            tx.execute(
                "INSERT INTO module_desired (module, release_id, previous_id, changed_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (module) DO UPDATE SET release_id = excluded.release_id, previous_id = excluded.previous_id, changed_at = excluded.changed_at",
                params![release.module, release.id, before, note.at_ms],
            )
            .map_err(db_error)?;
            tx.execute("UPDATE fleet_changes SET counter = counter + 1 WHERE id = 1", [])
                .map_err(db_error)?;
            let newest_first = {
                let mut select = tx
                    .prepare(
                        "SELECT release_id FROM module_releases WHERE module = ?1 ORDER BY published_at DESC, release_id",
                    )
                    .map_err(db_error)?;
                let ids = select
                    .query_map([&release.module], |row| row.get::<_, String>(0))
                    .map_err(db_error)?;
                ids.collect::<Result<Vec<_>, _>>().map_err(db_error)?
            };
            for id in to_prune(&newest_first, keep, &release.id, before.as_deref()) {
                tx.execute("DELETE FROM module_releases WHERE release_id = ?1", [id])
                    .map_err(db_error)?;
            }
            let (state_before, state_after) =
                publish_states(&release.module, before.as_deref(), &release.id);
            append(&tx, "publish", NO_PLAYER, &note, state_before, state_after)?;
            tx.commit().map_err(db_error)?;
            Ok(Published::Desired { previous: before })
        })
        .await
    }

    async fn roll_back(
        &self,
        module: &str,
        note: &AuditNote,
    ) -> Result<Option<RolledBack>, StoreError> {
        let (module, note) = (module.to_owned(), note.clone());
        self.with_conn(move |conn| {
            let tx = write_transaction(conn)?;
            let desired: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT release_id, previous_id FROM module_desired WHERE module = ?1",
                    [&module],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            let Some((from, Some(to))) = desired else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE module_desired SET release_id = ?2, previous_id = NULL, changed_at = ?3 WHERE module = ?1",
                params![module, to, note.at_ms],
            )
            .map_err(db_error)?;
            tx.execute("UPDATE fleet_changes SET counter = counter + 1 WHERE id = 1", [])
                .map_err(db_error)?;
            let (state_before, state_after) = publish_states(&module, Some(&from), &to);
            append(&tx, "rollback", NO_PLAYER, &note, state_before, state_after)?;
            tx.commit().map_err(db_error)?;
            Ok(Some(RolledBack { from, to }))
        })
        .await
    }

    async fn fleet_changes(&self) -> Result<i64, StoreError> {
        self.with_conn(|conn| {
            conn.prepare_cached("SELECT counter FROM fleet_changes WHERE id = 1")
                .and_then(|mut select| select.query_row([], |row| row.get(0)))
                .map_err(db_error)
        })
        .await
    }

    async fn desired(&self) -> Result<Vec<Desired>, StoreError> {
        self.with_conn(|conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT module, release_id, previous_id, changed_at FROM module_desired ORDER BY module",
                )
                .map_err(db_error)?;
            let rows = select
                .query_map([], |row| {
                    Ok(Desired {
                        module: row.get(0)?,
                        release_id: row.get(1)?,
                        previous_id: row.get(2)?,
                        changed_at_ms: row.get(3)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn release(&self, id: &str) -> Result<Option<Release>, StoreError> {
        let id = id.to_owned();
        self.with_conn(move |conn| {
            let row = conn
                .query_row(
                    "SELECT module, version, library_zlib, signature, tables FROM module_releases WHERE release_id = ?1",
                    [&id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, Option<Vec<u8>>>(3)?,
                            row.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(db_error)?;
            row.map(|(module, version, library_zlib, signature, tables)| {
                Ok(Release {
                    tables: parse_tables(&id, tables)?,
                    id: id.clone(),
                    module,
                    version,
                    library_zlib,
                    signature,
                })
            })
            .transpose()
        })
        .await
    }

    async fn report_host(&self, report: &HostReport) -> Result<(), StoreError> {
        let report = report.clone();
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "INSERT INTO fleet_hosts (host_id, address, binary_version, started_at, last_seen, modules) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (host_id) DO UPDATE SET address = excluded.address, binary_version = excluded.binary_version, \
                 started_at = excluded.started_at, last_seen = excluded.last_seen, modules = excluded.modules",
            )
            .and_then(|mut upsert| {
                upsert.execute(params![
                    report.host_id,
                    report.address,
                    report.binary_version,
                    report.started_at_ms,
                    report.last_seen_ms,
                    report.modules
                ])
            })
            .map(|_| ())
            .map_err(db_error)
        })
        .await
    }

    async fn hosts(&self) -> Result<Vec<HostReport>, StoreError> {
        self.with_conn(|conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT host_id, address, binary_version, started_at, last_seen, modules FROM fleet_hosts ORDER BY host_id",
                )
                .map_err(db_error)?;
            let rows = select
                .query_map([], |row| {
                    Ok(HostReport {
                        host_id: row.get(0)?,
                        address: row.get(1)?,
                        binary_version: row.get(2)?,
                        started_at_ms: row.get(3)?,
                        last_seen_ms: row.get(4)?,
                        modules: row.get(5)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }
}
