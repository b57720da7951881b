//! The fleet's tables on the embedded store ([`FleetStore`]): a single host's releases.

use super::operator::append;
use super::{db_error, write_transaction, SqliteStore};
use crate::store::fleet::{
    audit_states, decide, parse_tables, tables_text, to_prune, Desired, FleetChange, FleetOutcome,
    FleetStore, HostReport, Release, Retention, CHANGE_COUNTS, NO_PLAYER,
};
use crate::store::{AuditNote, StoreError};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

const DESIRED_COLUMNS: &str =
    "module, release_id, previous_id, canary_id, canary_percent, watch_until, changed_at";

fn desired_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Desired> {
    Ok(Desired {
        module: row.get(0)?,
        release_id: row.get(1)?,
        previous_id: row.get(2)?,
        canary_id: row.get(3)?,
        canary_percent: row.get(4)?,
        watch_until_ms: row.get(5)?,
        changed_at_ms: row.get(6)?,
    })
}

/// [`FleetStore::change`]'s transaction.
fn change_in(
    tx: &rusqlite::Transaction<'_>,
    module: &str,
    change: &FleetChange,
    release: Option<&Release>,
    note: &AuditNote,
    retention: Retention,
) -> Result<FleetOutcome, StoreError> {
    if let Some(release) = release {
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
    }
    let before = tx
        .query_row(
            &format!("SELECT {DESIRED_COLUMNS} FROM module_desired WHERE module = ?1"),
            [module],
            desired_row,
        )
        .optional()
        .map_err(db_error)?;
    let published = release.map(|r| r.id.as_str());
    let (after, action) = match decide(
        module,
        before.as_ref(),
        change,
        published,
        note.at_ms,
        retention.watch_ms,
    ) {
        Ok(decided) => decided,
        // Nothing else changes; a release stored above stays stored (it is by identity).
        Err(declined) => return Ok(declined.into()),
    };
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO module_desired ({DESIRED_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ),
        params![
            after.module,
            after.release_id,
            after.previous_id,
            after.canary_id,
            after.canary_percent,
            after.watch_until_ms,
            after.changed_at_ms
        ],
    )
    .map_err(db_error)?;
    tx.execute(
        "UPDATE fleet_changes SET counter = counter + 1 WHERE id = 1",
        [],
    )
    .map_err(db_error)?;
    let newest_first = {
        let mut select = tx
            .prepare(
                "SELECT release_id FROM module_releases WHERE module = ?1 ORDER BY published_at DESC, release_id",
            )
            .map_err(db_error)?;
        let ids = select
            .query_map([module], |row| row.get::<_, String>(0))
            .map_err(db_error)?;
        ids.collect::<Result<Vec<_>, _>>().map_err(db_error)?
    };
    for id in to_prune(&newest_first, retention.keep_releases, &after) {
        tx.execute("DELETE FROM module_releases WHERE release_id = ?1", [id])
            .map_err(db_error)?;
    }
    let (state_before, state_after) = audit_states(before.as_ref(), &after);
    append(tx, action, NO_PLAYER, note, state_before, state_after)?;
    Ok(FleetOutcome::Changed {
        before: before.map(Box::new),
        after: Box::new(after),
    })
}

#[async_trait]
impl FleetStore for SqliteStore {
    async fn change(
        &self,
        module: &str,
        change: &FleetChange,
        release: Option<&Release>,
        note: &AuditNote,
        retention: Retention,
    ) -> Result<FleetOutcome, StoreError> {
        let (module, change, release, note) = (
            module.to_owned(),
            change.clone(),
            release.cloned(),
            note.clone(),
        );
        self.with_conn(move |conn| {
            let tx = write_transaction(conn)?;
            let outcome = change_in(&tx, &module, &change, release.as_ref(), &note, retention)?;
            tx.commit().map_err(db_error)?;
            Ok(outcome)
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
                .prepare_cached(&format!(
                    "SELECT {DESIRED_COLUMNS} FROM module_desired ORDER BY module"
                ))
                .map_err(db_error)?;
            let rows = select.query_map([], desired_row).map_err(db_error)?;
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
                "INSERT INTO fleet_hosts (host_id, address, binary_version, started_at, last_seen, modules, players_online) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (host_id) DO UPDATE SET address = excluded.address, binary_version = excluded.binary_version, \
                 started_at = excluded.started_at, last_seen = excluded.last_seen, modules = excluded.modules, \
                 players_online = excluded.players_online",
            )
            .and_then(|mut upsert| {
                upsert.execute(params![
                    report.host_id,
                    report.address,
                    report.binary_version,
                    report.started_at_ms,
                    report.last_seen_ms,
                    report.modules,
                    report.players_online
                ])
            })
            .map(|_| ())
            .map_err(db_error)
        })
        .await
    }

    async fn change_counts(&self) -> Result<Vec<(String, bool, u64)>, StoreError> {
        self.with_conn(|conn| {
            let mut select = conn.prepare_cached(CHANGE_COUNTS).map_err(db_error)?;
            let rows = select
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)? == 1,
                        row.get::<_, i64>(2)?.max(0) as u64,
                    ))
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn hosts(&self) -> Result<Vec<HostReport>, StoreError> {
        self.with_conn(|conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT host_id, address, binary_version, started_at, last_seen, modules, players_online FROM fleet_hosts ORDER BY host_id",
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
                        players_online: row.get(6)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }
}
