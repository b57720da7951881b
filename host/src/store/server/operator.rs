//! The operators' side of a server store: looking players up, grants and revokes, each
//! written with its audit row in the same transaction as the player's row lock, and reading
//! the audit log.

use super::pool::Lease;
use super::rows::{audit_entry, db_error, int, read_player, text};
use super::{lock_player, Backend, ServerStore};
use crate::store::{
    balances, granted, items_json, parse_module_data, AuditEntry, AuditNote, Grant, PlayerDetails,
    StoreError,
};
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;

impl ServerStore {
    /// Adds an audit row in the transaction `conn` is in and returns it.
    pub(super) async fn append_audit(
        &self,
        conn: &mut Lease,
        action: &str,
        player_id: &str,
        note: &AuditNote,
        before: Value,
        after: Value,
    ) -> Result<AuditEntry, StoreError> {
        let (before_text, after_text) = (before.to_string(), after.to_string());
        let insert = sqlx::query(&self.sql.insert_audit)
            .bind(note.at_ms)
            .bind(note.operator.as_str())
            .bind(action)
            .bind(player_id)
            .bind(note.reason.as_str())
            .bind(before_text.as_str())
            .bind(after_text.as_str());
        let id = match self.backend {
            Backend::Postgres => conn
                .fetch_one(insert)
                .await?
                .try_get::<i64, _>(0)
                .map_err(db_error)?,
            Backend::MySql => conn
                .execute(insert)
                .await?
                .last_insert_id()
                .ok_or_else(|| StoreError::Unavailable("the audit row got no id".into()))?,
        };
        Ok(AuditEntry::written(
            id, note, action, player_id, before, after,
        ))
    }

    pub(super) async fn details(
        &self,
        player_id: &str,
    ) -> Result<Option<PlayerDetails>, StoreError> {
        let mut conn = self.conn().await?;
        let Some(row) = conn
            .fetch_optional(sqlx::query(&self.sql.account_of).bind(player_id))
            .await?
        else {
            return Ok(None);
        };
        let account = text(&row, 0)?;
        let (created_at_ms, updated_at_ms) = (int(&row, 1)?, int(&row, 2)?);
        let row = conn
            .fetch_optional(sqlx::query(&self.sql.player).bind(player_id))
            .await?
            .ok_or_else(|| StoreError::NoSuchPlayer(player_id.to_owned()))?;
        let player = read_player(&row, 0, player_id.to_owned())?;
        let mut modules = BTreeMap::new();
        for row in conn
            .fetch_all(sqlx::query(&self.sql.modules_of).bind(player_id))
            .await?
        {
            let module = text(&row, 0)?;
            let data = parse_module_data(player_id, &module, &text(&row, 1)?)?;
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

    pub(super) async fn grant_audited(
        &self,
        player_id: &str,
        grant: &Grant,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        // Left midway (an error, a dropped future), the transaction leaves the connection
        // unsettled, and the pool closes it, which rolls it back.
        let mut conn = self.conn().await?;
        conn.start_transaction().await?;
        let before = lock_player(&mut conn, &self.sql, player_id).await?;
        let after = match granted(&before, grant) {
            Ok(after) => after,
            Err(refused) => {
                // Frees the row now rather than when the connection is closed.
                conn.end_transaction(false).await?;
                return Err(refused);
            }
        };
        let update = sqlx::query(&self.sql.update_balances)
            .bind(after.gold)
            .bind(after.diamond)
            .bind(items_json(&after))
            .bind(note.at_ms)
            .bind(player_id);
        conn.execute(update).await?;
        let entry = self
            .append_audit(
                &mut conn,
                "grant",
                player_id,
                note,
                balances(&before),
                balances(&after),
            )
            .await?;
        conn.end_transaction(true).await?;
        Ok(entry)
    }

    pub(super) async fn revoke_audited(
        &self,
        player_id: &str,
        note: &AuditNote,
    ) -> Result<AuditEntry, StoreError> {
        let mut conn = self.conn().await?;
        conn.start_transaction().await?;
        lock_player(&mut conn, &self.sql, player_id).await?;
        let delete = sqlx::query(&self.sql.delete_sessions_of).bind(player_id);
        let ended = conn.execute(delete).await?.rows_affected();
        let entry = self
            .append_audit(
                &mut conn,
                "revoke",
                player_id,
                note,
                serde_json::json!({ "sessions": ended }),
                serde_json::json!({ "sessions": 0 }),
            )
            .await?;
        conn.end_transaction(true).await?;
        Ok(entry)
    }

    pub(super) async fn audit_rows(
        &self,
        player_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit);
        let query = match player_id {
            Some(player_id) => sqlx::query(&self.sql.audit_of_player)
                .bind(player_id)
                .bind(limit),
            None => sqlx::query(&self.sql.audit_of_all).bind(limit),
        };
        let rows = self.conn().await?.fetch_all(query).await?;
        rows.iter().map(audit_entry).collect()
    }
}
