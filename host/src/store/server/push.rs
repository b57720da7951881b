//! Pushes, groups and accounts on PostgreSQL and MariaDB ([`PushStore`]). A turn writes its
//! pushes and group changes inside its transaction ([`write_effects`], from `turn.rs`); the
//! rest are single statements.
//!
//! Push ids come from the counter row `push_counter`, which a pushing transaction bumps as its
//! last write, so that its row lock is held only from there to the commit, and ids are
//! handed out in commit order (docs/ARCHITECTURE.md, "The push path"). On PostgreSQL the same
//! transaction notifies [`super::notices::PUSH_CHANNEL`], delivered at commit.

use super::pool::Lease;
use super::rows::{int, text};
use super::sql::question_marks;
use super::{Backend, ServerStore};
use crate::store::push::{
    push_columns_of, GoldGift, PushRow, PushStore, PushTarget, TurnEffects, PUSH_COLUMNS,
};
use crate::store::StoreError;
use async_trait::async_trait;
use sqlx::any::AnyRow;

/// The statements of pushes, for one backend.
#[derive(Debug)]
pub(super) struct PushSql {
    gift: String,
    bump_counter: String,
    counter: String,
    insert_push: String,
    join: String,
    leave: String,
    /// PostgreSQL: wakes the other hosts at commit.
    notify: Option<String>,
    after: String,
    backlog: String,
    members: String,
    prune: String,
    player_of_account: String,
    account_of: String,
}

impl PushSql {
    pub(super) fn new(backend: Backend) -> PushSql {
        let p_columns = push_columns_of("p");
        let insert_group =
            "INTO push_groups (module, group_name, player_id, joined_at) VALUES ($1, $2, $3, $4)";
        let (join, prune) = match backend {
            Backend::Postgres => (
                format!("INSERT {insert_group} ON CONFLICT (module, group_name, player_id) DO NOTHING"),
                // PostgreSQL's DELETE has no LIMIT.
                "DELETE FROM pushes WHERE id IN (SELECT id FROM pushes WHERE \
                 (persistent = 1 AND created_at < $1) OR (persistent = 0 AND created_at < $2) LIMIT $3)"
                    .to_owned(),
            ),
            Backend::MySql => (
                format!("INSERT IGNORE {insert_group}"),
                "DELETE FROM pushes WHERE \
                 (persistent = 1 AND created_at < $1) OR (persistent = 0 AND created_at < $2) LIMIT $3"
                    .to_owned(),
            ),
        };
        let sql = PushSql {
            // Bumps the version: a turn of theirs that read the record before must run again.
            gift: "UPDATE players SET gold = gold + $1, updated_at = $2, version = version + 1 \
                   WHERE player_id = $3 AND gold <= $4"
                .into(),
            bump_counter: "UPDATE push_counter SET last = last + $1 WHERE id = 1".into(),
            counter: "SELECT last FROM push_counter WHERE id = 1".into(),
            insert_push: format!(
                "INSERT INTO pushes ({PUSH_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            join,
            leave: "DELETE FROM push_groups WHERE module = $1 AND group_name = $2 AND player_id = $3"
                .into(),
            notify: (backend == Backend::Postgres)
                .then(|| format!("SELECT pg_notify('{}', '')", super::notices::PUSH_CHANNEL)),
            after: format!("SELECT {PUSH_COLUMNS} FROM pushes WHERE id > $1 ORDER BY id LIMIT $2"),
            backlog: format!(
                "SELECT {PUSH_COLUMNS} FROM ( \
                   SELECT {PUSH_COLUMNS} FROM pushes \
                     WHERE target_kind = 'player' AND target = $1 AND id > $2 AND persistent = 1 \
                   UNION ALL \
                   SELECT {p_columns} FROM push_groups g JOIN pushes p \
                     ON p.target_kind = 'group' AND p.module = g.module AND p.target = g.group_name \
                     AND p.id > $3 AND p.persistent = 1 AND p.created_at >= g.joined_at \
                     WHERE g.player_id = $4 \
                 ) missed ORDER BY id DESC LIMIT $5"
            ),
            members: "SELECT player_id FROM push_groups WHERE module = $1 AND group_name = $2"
                .into(),
            prune,
            player_of_account: "SELECT player_id FROM players WHERE account = $1".into(),
            account_of: "SELECT account FROM players WHERE player_id = $1".into(),
        };
        match backend {
            Backend::Postgres => sql,
            Backend::MySql => sql.with_question_marks(),
        }
    }

    fn with_question_marks(self) -> PushSql {
        let q = |text: String| question_marks(&text);
        PushSql {
            gift: q(self.gift),
            bump_counter: q(self.bump_counter),
            counter: q(self.counter),
            insert_push: q(self.insert_push),
            join: q(self.join),
            leave: q(self.leave),
            notify: self.notify,
            after: q(self.after),
            backlog: q(self.backlog),
            members: q(self.members),
            prune: q(self.prune),
            player_of_account: q(self.player_of_account),
            account_of: q(self.account_of),
        }
    }
}

/// Gold given to other players by a turn, inside its transaction on `conn`: `gifts` are some of
/// the turn's, in player id order, written before or after the turn's own record so that
/// every turn locks its players' rows in id order.
pub(super) async fn write_gifts(
    conn: &mut Lease,
    sql: &PushSql,
    gifts: &[GoldGift],
    now_ms: i64,
) -> Result<(), StoreError> {
    for gift in gifts {
        let update = sqlx::query(&sql.gift)
            .bind(gift.gold)
            .bind(now_ms)
            .bind(gift.player_id.as_str())
            .bind(i64::MAX - gift.gold);
        if conn.execute(update).await?.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "player {} cannot take {} gold more",
                gift.player_id, gift.gold
            )));
        }
    }
    Ok(())
}

/// A turn's group changes and pushes, inside its transaction on `conn`, after its own write.
pub(super) async fn write_effects(
    conn: &mut Lease,
    sql: &PushSql,
    (player_id, module): (&str, &str),
    effects: &TurnEffects,
    now_ms: i64,
) -> Result<(), StoreError> {
    for group in &effects.join {
        let join = sqlx::query(&sql.join)
            .bind(module)
            .bind(group.as_str())
            .bind(player_id)
            .bind(now_ms);
        conn.execute(join).await?;
    }
    for group in &effects.leave {
        let leave = sqlx::query(&sql.leave)
            .bind(module)
            .bind(group.as_str())
            .bind(player_id);
        conn.execute(leave).await?;
    }
    if effects.pushes.is_empty() {
        return Ok(());
    }
    // The counter's row lock, from here to the commit, orders the pushing transactions.
    let count = i64::try_from(effects.pushes.len()).unwrap_or(i64::MAX);
    conn.execute(sqlx::query(&sql.bump_counter).bind(count))
        .await?;
    let last = int(&conn.fetch_one(sqlx::query(&sql.counter)).await?, 0)?;
    for (id, (target_kind, target, kind, data, persistent)) in
        (last - count + 1..).zip(effects.push_columns())
    {
        let insert = sqlx::query(&sql.insert_push)
            .bind(id)
            .bind(target_kind)
            .bind(target)
            .bind(module)
            .bind(kind)
            .bind(data)
            .bind(i64::from(persistent))
            .bind(now_ms);
        conn.execute(insert).await?;
    }
    if let Some(notify) = &sql.notify {
        conn.fetch_one(sqlx::query(notify)).await?;
    }
    Ok(())
}

fn push_row(row: &AnyRow) -> Result<PushRow, StoreError> {
    Ok(PushRow {
        id: int(row, 0)?,
        target: PushTarget::from_columns(&text(row, 1)?, text(row, 2)?)?,
        module: text(row, 3)?,
        kind: text(row, 4)?,
        data: text(row, 5)?,
        persistent: int(row, 6)? != 0,
    })
}

#[async_trait]
impl PushStore for ServerStore {
    async fn latest_push_id(&self) -> Result<i64, StoreError> {
        let row = self
            .conn()
            .await?
            .fetch_one(sqlx::query(&self.push_sql.counter))
            .await?;
        int(&row, 0)
    }

    async fn pushes_after(&self, after: i64, limit: u32) -> Result<Vec<PushRow>, StoreError> {
        let select = sqlx::query(&self.push_sql.after)
            .bind(after)
            .bind(i64::from(limit));
        let rows = self.conn().await?.fetch_all(select).await?;
        rows.iter().map(push_row).collect()
    }

    async fn backlog(
        &self,
        player_id: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<PushRow>, StoreError> {
        let select = sqlx::query(&self.push_sql.backlog)
            .bind(player_id)
            .bind(since)
            .bind(since)
            .bind(player_id)
            .bind(i64::from(limit));
        let rows = self.conn().await?.fetch_all(select).await?;
        // Read newest first, so that a backlog over the limit keeps its newest pushes.
        rows.iter().rev().map(push_row).collect()
    }

    async fn group_members(&self, module: &str, group: &str) -> Result<Vec<String>, StoreError> {
        let select = sqlx::query(&self.push_sql.members).bind(module).bind(group);
        let rows = self.conn().await?.fetch_all(select).await?;
        rows.iter().map(|row| text(row, 0)).collect()
    }

    async fn prune_pushes(
        &self,
        persistent_before_ms: i64,
        live_before_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let delete = sqlx::query(&self.push_sql.prune)
            .bind(persistent_before_ms)
            .bind(live_before_ms)
            .bind(i64::from(limit));
        Ok(self.conn().await?.execute(delete).await?.rows_affected())
    }

    async fn player_of_account(&self, account: &str) -> Result<Option<String>, StoreError> {
        let select = sqlx::query(&self.push_sql.player_of_account).bind(account);
        let row = self.conn().await?.fetch_optional(select).await?;
        row.map(|row| text(&row, 0)).transpose()
    }

    async fn account_of(&self, player_id: &str) -> Result<Option<String>, StoreError> {
        let select = sqlx::query(&self.push_sql.account_of).bind(player_id);
        let row = self.conn().await?.fetch_optional(select).await?;
        row.map(|row| text(&row, 0)).transpose()
    }

    fn push_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.notices
            .as_ref()
            .map(|notices| notices.subscribe(super::notices::PUSH_CHANNEL))
    }
}
