//! Reading the server stores' rows: a player's record, an audit entry, typed columns, and
//! database errors as the store reports them.

use crate::store::{parse_audit_state, parse_items, AuditEntry, StoreError};
use plugin_api::Player;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Column, Row};

/// The record from the columns `name, head_img, gold, diamond, items` starting at `first`.
pub(super) fn read_player(
    row: &AnyRow,
    first: usize,
    player_id: String,
) -> Result<Player, StoreError> {
    let items = parse_items(&player_id, &text(row, first + 4)?)?;
    Ok(Player {
        name: text(row, first)?,
        head_img: text(row, first + 1)?,
        gold: int(row, first + 2)?,
        diamond: int(row, first + 3)?,
        items,
        player_id,
    })
}

pub(super) fn audit_entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let id = int(row, 0)?;
    let json = |index: usize| parse_audit_state(id, &text(row, index)?);
    Ok(AuditEntry {
        id,
        at_ms: int(row, 1)?,
        operator: text(row, 2)?,
        action: text(row, 3)?,
        player_id: text(row, 4)?,
        reason: text(row, 5)?,
        before: json(6)?,
        after: json(7)?,
    })
}

pub(super) fn int(row: &AnyRow, index: usize) -> Result<i64, StoreError> {
    row.try_get(index).map_err(db_error)
}

pub(super) fn text(row: &AnyRow, index: usize) -> Result<String, StoreError> {
    optional_text(row, index)?.ok_or_else(|| StoreError::Corrupt(format!("column {index} is NULL")))
}

/// A text column. sqlx 0.8's `Any` driver reports MariaDB's `TEXT` columns as binary
/// (launchbadge/sqlx#3390, changed in 0.9), so bytes are accepted too, if they are UTF-8.
/// The column's type says which to decode: trying text first and bytes after its error cost
/// MariaDB's reads a formatted error message for each text column of each row.
pub(super) fn optional_text(row: &AnyRow, index: usize) -> Result<Option<String>, StoreError> {
    let column = row.try_column(index).map_err(db_error)?;
    if column.type_info().kind() != AnyTypeInfoKind::Blob {
        return row.try_get::<Option<String>, _>(index).map_err(db_error);
    }
    match row.try_get::<Option<Vec<u8>>, _>(index).map_err(db_error)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("column {index} is not UTF-8: {e}"))),
    }
}

/// A database's error as the store's. A deadlock or a serialization failure (SQLSTATE
/// `40P01`, `40001`: PostgreSQL's, and MariaDB's `ER_LOCK_DEADLOCK`) is a [`StoreError::Conflict`]:
/// the database rolled the statement's transaction back, or will at its end, so nothing of it
/// applies, and the turn that lost is run again, as after any other conflict. (A locked turn
/// holds its own row from its read, then gives to players whose ids sort before it: two such
/// turns giving to each other wait in a cycle that the database breaks this way.)
pub(super) fn db_error(e: sqlx::Error) -> StoreError {
    if is_conflict(&e) {
        return StoreError::Conflict;
    }
    StoreError::Unavailable(e.to_string())
}

/// Whether the database refused a statement because of another transaction's locks.
fn is_conflict(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = e else {
        return false;
    };
    matches!(e.code().as_deref(), Some("40001" | "40P01"))
}
