//! The `sqlite` thread: it owns the connection and runs the store's jobs in the order they
//! were queued, committing the writes of turns queued together in one transaction (group
//! commit).
//!
//! Why group: a commit costs more than a turn's two statements (SQLite takes and releases its
//! file locks and appends the log's pages once per transaction; with `synchronous = FULL` it
//! also syncs). Under load many turns wait on this one thread at once; written together, they
//! pay that once. Each turn is a savepoint inside the group's transaction, so one that fails
//! is undone alone, and each reply is sent only after the group's commit: a `ret: 0` still
//! means committed. A group takes only what is already queued, so a lone turn never waits.

use super::cache::{PendingWrite, TurnCache};
use super::{db_error, items_json, unavailable, StoreError};
use crate::store::{KeyRow, ModuleData, TurnEffects};
use plugin_api::Player;
use rusqlite::{params, Connection};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Turns committed in one transaction at most.
const MAX_GROUP: usize = 64;

/// A job that gets the connection's slot (`None` once closed) and answers for itself.
pub(super) type RunJob = Box<dyn FnOnce(&mut Option<Connection>) + Send>;

/// What the database thread runs.
pub(super) enum Job {
    Run(RunJob),
    /// A turn's writes, committed with the turns queued beside it (boxed: a channel slot
    /// holds the largest variant).
    Write(Box<TurnWrite>),
}

/// The end of one command's turn: what changed, and where to say whether it was committed.
pub(super) struct TurnWrite {
    pub player_id: String,
    pub module: String,
    pub player: Option<Player>,
    /// The data, and the same as JSON text (made on the caller's thread, not this one).
    pub module_data: Option<(ModuleData, String)>,
    /// Pushes and group changes, in the turn's savepoint.
    pub effects: TurnEffects,
    /// A keyed command's reply, stored in the turn's savepoint.
    pub key: Option<KeyRow>,
    pub now_ms: i64,
    pub done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    /// Dropped once the cache knows the outcome (`None` without a cache): the turn's player,
    /// and the players it gives gold to.
    pub pending: Vec<PendingWrite>,
}

/// The thread's body: runs jobs until every sender is gone.
pub(super) fn run(
    conn: Connection,
    queue: crossbeam_channel::Receiver<Job>,
    cache: Option<Arc<TurnCache>>,
) {
    let mut slot = Some(conn);
    let mut group = Vec::new();
    for first in queue.iter() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write(turn) => group.push(*turn),
                Job::Run(job) => {
                    // In queue order: the writes before it are committed first.
                    commit(&mut slot, &mut group, cache.as_deref());
                    // A job that panics fails its own request (its reply is dropped); the
                    // connection and the thread stay for the next one.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut slot)));
                }
            }
            if group.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        commit(&mut slot, &mut group, cache.as_deref());
    }
}

/// Commits `group`'s writes in one transaction and answers each turn, updating the cache
/// after the commit (or forgetting the players whose write is not known to be committed).
fn commit(slot: &mut Option<Connection>, group: &mut Vec<TurnWrite>, cache: Option<&TurnCache>) {
    if group.is_empty() {
        return;
    }
    let turns = std::mem::take(group);
    let Some(conn) = slot.as_mut() else {
        for turn in turns {
            let closed = unavailable("the database is closed: the host is shutting down".into());
            let _ = turn.done.send(Err(closed));
        }
        return;
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| write_all(conn, &turns)));
    let results = match outcome {
        Ok(Ok(results)) => results,
        // Nothing was committed; each turn gets the error. A panic drops the replies instead
        // (the requests fail as for any panicking job).
        Ok(Err(e)) => turns
            .iter()
            .map(|_| Err(unavailable(e.to_string())))
            .collect(),
        Err(_) => {
            if let Some(cache) = cache {
                for turn in &turns {
                    cache.forget(&turn.player_id);
                    turn.effects.other_players().for_each(|p| cache.forget(p));
                }
            }
            return;
        }
    };
    for (turn, result) in turns.into_iter().zip(results) {
        if let Some(cache) = cache {
            // A gift changed their records in the file: their next turns read it there.
            turn.effects.other_players().for_each(|p| cache.forget(p));
            match &result {
                Ok(()) => cache.written(
                    &turn.player_id,
                    &turn.module,
                    turn.player.as_ref(),
                    turn.module_data.as_ref().map(|(data, _)| data),
                ),
                Err(_) => cache.forget(&turn.player_id),
            }
        }
        // The cache knows the outcome: the player's turns may read it again.
        drop(turn.pending);
        let _ = turn.done.send(result);
    }
}

/// The group's transaction: each turn in a savepoint of its own. The outer error means that
/// nothing was committed; an inner one, that this turn was undone.
fn write_all(
    conn: &mut Connection,
    turns: &[TurnWrite],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut tx = conn.transaction().map_err(db_error)?;
    let mut results = Vec::with_capacity(turns.len());
    for turn in turns {
        let savepoint = tx.savepoint().map_err(db_error)?;
        let written = write_turn(&savepoint, turn);
        if written.is_ok() {
            savepoint.commit().map_err(db_error)?;
        } else {
            // Its drop behaviour: roll back to the savepoint and release it.
            savepoint.finish().map_err(db_error)?;
        }
        results.push(written);
    }
    tx.commit().map_err(db_error)?;
    Ok(results)
}

/// A turn's statements: the module's data, the record, its pushes and group changes, then a
/// keyed command's reply (over an expired row of the same key, which lookups ignore and the
/// sweep has not deleted yet).
fn write_turn(conn: &Connection, turn: &TurnWrite) -> Result<(), StoreError> {
    if let Some((_, data)) = &turn.module_data {
        conn.prepare_cached(
            "INSERT INTO module_data (player_id, module, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (player_id, module) DO UPDATE SET data = excluded.data",
        )
        .and_then(|mut upsert| upsert.execute(params![turn.player_id, turn.module, data]))
        .map_err(db_error)?;
    }
    if let Some(p) = &turn.player {
        conn.prepare_cached(
            "UPDATE players SET name = ?2, head_img = ?3, gold = ?4, diamond = ?5, items = ?6,
             updated_at = ?7 WHERE player_id = ?1",
        )
        .and_then(|mut update| {
            update.execute(params![
                turn.player_id,
                p.name,
                p.head_img,
                p.gold,
                p.diamond,
                items_json(p),
                turn.now_ms
            ])
        })
        .map_err(db_error)?;
    }
    if !turn.effects.is_empty() {
        super::push::write_effects(
            conn,
            &turn.player_id,
            &turn.module,
            &turn.effects,
            turn.now_ms,
        )?;
    }
    if let Some(key) = &turn.key {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (player_id, idem_key, fingerprint, reply, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (player_id, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint,
             reply = excluded.reply, created_at = excluded.created_at",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                turn.player_id,
                key.key,
                key.fingerprint,
                key.reply,
                turn.now_ms
            ])
        })
        .map_err(db_error)?;
    }
    Ok(())
}
