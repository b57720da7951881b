//! The operators' side of the SQLite store: looking players up, grants and revokes, each
//! written with its audit row in the same transaction, and reading the audit log.
//!
//! The audit table only grows: triggers refuse every `UPDATE` and `DELETE` on it (schema v2,
//! `host/migrations/sqlite/0002_audit.sql`),
//! so not even a bug in the host can rewrite what operators did.

use super::{db_error, read_player, write_transaction};
use crate::store::{
    balances, granted, items_json, parse_audit_state, parse_module_data, AuditEntry, AuditNote,
    Grant, PlayerDetails, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn find_player(
    conn: &mut Connection,
    account: &str,
) -> Result<Option<PlayerDetails>, StoreError> {
    let tx = conn.transaction().map_err(db_error)?;
    let player_id: Option<String> = tx
        .query_row(
            "SELECT player_id FROM players WHERE account = ?1",
            [account],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?;
    let details = match player_id {
        Some(player_id) => details(&tx, &player_id)?,
        None => None,
    };
    tx.finish().map_err(db_error)?;
    Ok(details)
}

pub fn player_details(
    conn: &mut Connection,
    player_id: &str,
) -> Result<Option<PlayerDetails>, StoreError> {
    let tx = conn.transaction().map_err(db_error)?;
    let details = details(&tx, player_id)?;
    tx.finish().map_err(db_error)?;
    Ok(details)
}

fn details(tx: &Transaction<'_>, player_id: &str) -> Result<Option<PlayerDetails>, StoreError> {
    let row: Option<(String, i64, i64)> = tx
        .query_row(
            "SELECT account, created_at, updated_at FROM players WHERE player_id = ?1",
            [player_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(db_error)?;
    let Some((account, created_at_ms, updated_at_ms)) = row else {
        return Ok(None);
    };
    let player = read_player(tx, player_id)?;
    let mut modules = BTreeMap::new();
    let mut select = tx
        .prepare("SELECT module, data FROM module_data WHERE player_id = ?1 ORDER BY module")
        .map_err(db_error)?;
    let rows = select
        .query_map([player_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_error)?;
    for row in rows {
        let (module, text) = row.map_err(db_error)?;
        let data = parse_module_data(player_id, &module, &text)?;
        modules.insert(module, data);
    }
    Ok(Some(PlayerDetails {
        account,
        player,
        modules,
        created_at_ms,
        updated_at_ms,
    }))
}

pub fn grant(
    conn: &mut Connection,
    player_id: &str,
    grant: &Grant,
    note: &AuditNote,
) -> Result<AuditEntry, StoreError> {
    let tx = write_transaction(conn)?;
    let before = read_player(&tx, player_id)?;
    let after = granted(&before, grant)?;
    tx.execute(
        "UPDATE players SET gold = ?2, diamond = ?3, items = ?4, updated_at = ?5 WHERE player_id = ?1",
        params![player_id, after.gold, after.diamond, items_json(&after), note.at_ms],
    )
    .map_err(db_error)?;
    let entry = append(
        &tx,
        "grant",
        player_id,
        note,
        balances(&before),
        balances(&after),
    )?;
    tx.commit().map_err(db_error)?;
    Ok(entry)
}

pub fn revoke_sessions(
    conn: &mut Connection,
    player_id: &str,
    note: &AuditNote,
) -> Result<AuditEntry, StoreError> {
    let tx = write_transaction(conn)?;
    read_player(&tx, player_id)?; // NoSuchPlayer if there is none
    let ended = tx
        .execute("DELETE FROM sessions WHERE player_id = ?1", [player_id])
        .map_err(db_error)?;
    let entry = append(
        &tx,
        "revoke",
        player_id,
        note,
        json!({ "sessions": ended }),
        json!({ "sessions": 0 }),
    )?;
    tx.commit().map_err(db_error)?;
    Ok(entry)
}

pub(super) fn append(
    tx: &Transaction<'_>,
    action: &str,
    player_id: &str,
    note: &AuditNote,
    before: Value,
    after: Value,
) -> Result<AuditEntry, StoreError> {
    tx.execute(
        "INSERT INTO audit (at_ms, operator, action, player_id, reason, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            note.at_ms,
            note.operator,
            action,
            player_id,
            note.reason,
            before.to_string(),
            after.to_string()
        ],
    )
    .map_err(db_error)?;
    Ok(AuditEntry::written(
        tx.last_insert_rowid(),
        note,
        action,
        player_id,
        before,
        after,
    ))
}

pub fn audit_log(
    conn: &mut Connection,
    player_id: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut select = conn
        .prepare(
            "SELECT id, at_ms, operator, action, player_id, reason, before, after FROM audit
             WHERE ?1 IS NULL OR player_id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(db_error)?;
    let rows = select
        .query_map(params![player_id, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, String>(7)?,
            ))
        })
        .map_err(db_error)?;
    let mut entries = Vec::new();
    for row in rows {
        let (id, at_ms, operator, action, player_id, reason, before, after) =
            row.map_err(db_error)?;
        entries.push(AuditEntry {
            id,
            at_ms,
            before: parse_audit_state(id, &before)?,
            after: parse_audit_state(id, &after)?,
            operator,
            action,
            player_id,
            reason,
        });
    }
    Ok(entries)
}
