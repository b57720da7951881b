//! The end of a command's turn on a server store.

use super::rows::db_error;
use super::sql::Sql;
use crate::store::{items_json, ModuleData, StoreError, TurnWriter};
use async_trait::async_trait;
use plugin_api::Player;
use serde_json::Value;
use sqlx::{Any, Transaction};
use std::sync::Arc;

/// The end of a command's turn on a server store: its writes and the commit, which releases
/// the player's row, or its rollback. Dropped instead, the transaction rolls back too (sqlx
/// sends the rollback when the connection goes back to the pool).
pub(super) struct ServerTurn {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) sql: Arc<Sql>,
    pub(super) player_id: String,
    pub(super) module: String,
}

#[async_trait]
impl TurnWriter for ServerTurn {
    async fn end(
        self: Box<Self>,
        player: Option<&Player>,
        module_data: Option<&ModuleData>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ServerTurn {
            mut tx,
            sql,
            player_id,
            module,
        } = *self;
        if let Some(data) = module_data {
            sqlx::query(&sql.upsert_module_data)
                .bind(player_id.as_str())
                .bind(module.as_str())
                .bind(Value::Object(data.clone()).to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        if let Some(p) = player {
            sqlx::query(&sql.update_player)
                .bind(p.name.as_str())
                .bind(p.head_img.as_str())
                .bind(p.gold)
                .bind(p.diamond)
                .bind(items_json(p))
                .bind(now_ms)
                .bind(player_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn abandon(self: Box<Self>) {
        let _ = self.tx.rollback().await;
    }
}
