//! Pushes, groups and accounts on the embedded store ([`PushStore`]). The turn writes its
//! gifts, pushes and group changes in its savepoint ([`write_effects`], from `db_thread.rs`);
//! the rest are reads and the prune, each a job of the database thread.

use super::{db_error, SqliteStore};
use crate::store::push::{
    push_columns_of, PushRow, PushStore, PushTarget, TurnEffects, PUSH_COLUMNS,
};
use crate::store::StoreError;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

/// A turn's gifts, pushes and group changes, in its savepoint: `player_id` is the turn's
/// player, `module` its module.
pub(super) fn write_effects(
    conn: &Connection,
    player_id: &str,
    module: &str,
    effects: &TurnEffects,
    now_ms: i64,
) -> Result<(), StoreError> {
    for group in &effects.join {
        conn.prepare_cached(
            "INSERT INTO push_groups (module, group_name, player_id, joined_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (module, group_name, player_id) DO NOTHING",
        )
        .and_then(|mut insert| insert.execute(params![module, group, player_id, now_ms]))
        .map_err(db_error)?;
    }
    for group in &effects.leave {
        conn.prepare_cached(
            "DELETE FROM push_groups WHERE module = ?1 AND group_name = ?2 AND player_id = ?3",
        )
        .and_then(|mut delete| delete.execute(params![module, group, player_id]))
        .map_err(db_error)?;
    }
    for gift in &effects.gifts {
        // The sum cannot pass the largest gold a record holds: a player that rich is refused
        // the gift rather than wrapped around.
        let added = conn
            .prepare_cached(
                "UPDATE players SET gold = gold + ?1, updated_at = ?2 \
                 WHERE player_id = ?3 AND gold <= ?4",
            )
            .and_then(|mut update| {
                update.execute(params![
                    gift.gold,
                    now_ms,
                    gift.player_id,
                    i64::MAX - gift.gold
                ])
            })
            .map_err(db_error)?;
        if added == 0 {
            return Err(StoreError::Refused(format!(
                "player {} cannot take {} gold more",
                gift.player_id, gift.gold
            )));
        }
    }
    for (target_kind, target, kind, data, persistent) in effects.push_columns() {
        conn.prepare_cached(
            "INSERT INTO pushes (target_kind, target, module, kind, data, persistent, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                target_kind,
                target,
                module,
                kind,
                data,
                i64::from(persistent),
                now_ms
            ])
        })
        .map_err(db_error)?;
    }
    Ok(())
}

fn push_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, String, String, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn push_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PushRow>, StoreError> {
    let rows = conn
        .prepare_cached(sql)
        .and_then(|mut select| {
            select
                .query_map(params, push_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_error)?;
    rows.into_iter()
        .map(
            |(id, target_kind, target, module, kind, data, persistent)| {
                Ok(PushRow {
                    id,
                    target: PushTarget::from_columns(&target_kind, target)?,
                    module,
                    kind,
                    data,
                    persistent: persistent != 0,
                })
            },
        )
        .collect()
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn latest_push_id(&self) -> Result<i64, StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM pushes", [], |row| {
                row.get(0)
            })
            .map_err(db_error)
        })
        .await
    }

    async fn pushes_after(&self, after: i64, limit: u32) -> Result<Vec<PushRow>, StoreError> {
        self.with_conn(move |conn| {
            push_rows(
                conn,
                &format!("SELECT {PUSH_COLUMNS} FROM pushes WHERE id > ?1 ORDER BY id LIMIT ?2"),
                params![after, limit],
            )
        })
        .await
    }

    async fn backlog(
        &self,
        player_id: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<PushRow>, StoreError> {
        let player_id = player_id.to_owned();
        self.with_conn(move |conn| {
            let mut rows = push_rows(conn, &backlog_sql(), params![player_id, since, limit])?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    async fn group_members(&self, module: &str, group: &str) -> Result<Vec<String>, StoreError> {
        let (module, group) = (module.to_owned(), group.to_owned());
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "SELECT player_id FROM push_groups WHERE module = ?1 AND group_name = ?2",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![module, group], |row| row.get(0))?
                    .collect()
            })
            .map_err(db_error)
        })
        .await
    }

    async fn prune_pushes(
        &self,
        persistent_before_ms: i64,
        live_before_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM pushes WHERE id IN (SELECT id FROM pushes WHERE \
                 (persistent = 1 AND created_at < ?1) OR (persistent = 0 AND created_at < ?2) LIMIT ?3)",
                params![persistent_before_ms, live_before_ms, limit],
            )
            .map(|deleted| deleted as u64)
            .map_err(db_error)
        })
        .await
    }

    async fn player_of_account(&self, account: &str) -> Result<Option<String>, StoreError> {
        let account = account.to_owned();
        self.with_conn(move |conn| {
            conn.prepare_cached("SELECT player_id FROM players WHERE account = ?1")
                .and_then(|mut select| select.query_row([account], |row| row.get(0)).optional())
                .map_err(db_error)
        })
        .await
    }

    async fn account_of(&self, player_id: &str) -> Result<Option<String>, StoreError> {
        let player_id = player_id.to_owned();
        self.with_conn(move |conn| {
            conn.prepare_cached("SELECT account FROM players WHERE player_id = ?1")
                .and_then(|mut select| select.query_row([player_id], |row| row.get(0)).optional())
                .map_err(db_error)
        })
        .await
    }
}

/// A player's missed persistent pushes: its own, and its groups' written since it joined.
/// Parameters: the player, the last id seen, the limit.
fn backlog_sql() -> String {
    format!(
        "SELECT {PUSH_COLUMNS} FROM ( \
           SELECT {PUSH_COLUMNS} FROM pushes \
             WHERE target_kind = 'player' AND target = ?1 AND id > ?2 AND persistent = 1 \
           UNION ALL \
           SELECT {p_columns} FROM push_groups g JOIN pushes p \
             ON p.target_kind = 'group' AND p.module = g.module AND p.target = g.group_name \
             AND p.id > ?2 AND p.persistent = 1 AND p.created_at >= g.joined_at \
             WHERE g.player_id = ?1 \
         ) missed ORDER BY id DESC LIMIT ?3",
        p_columns = push_columns_of("p")
    )
}
