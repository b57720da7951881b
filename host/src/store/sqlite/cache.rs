//! The embedded store's memory of player records and module data, so that a command's turn
//! reads memory instead of waiting for the database thread.
//!
//! Why it never disagrees with the file:
//! - every write of a record or of module data goes through the database thread (a turn's
//!   end, an operator grant), and that job changes the cache right after its commit (or
//!   forgets the player), before it answers; a first login only adds a player nobody cached;
//! - a player's turns and grants never overlap (`player_locks`), so a turn that reads the
//!   cache cannot race a write of the same player; and a write that was queued but is not
//!   done ([`TurnCache::write_pending`]: its request may have been dropped, a client that hung
//!   up, releasing the lock) sends the player's next turn to the file, behind that write in the
//!   thread's queue;
//! - it is used only while this process is the database's sole user ([`TurnCache::set_enabled`]).
//!   During a restart the predecessor and its successor share the file for a moment; each
//!   could miss the other's writes, so both read the file until the predecessor has exited.
//!
//! At most `store.sqlite_cache_players` players are kept; the rest are read from the file.

use crate::store::ModuleData;
use plugin_api::Player;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One player as last committed: the record and the data of each module that read it.
#[derive(Clone)]
struct CachedPlayer {
    record: Player,
    modules: HashMap<String, ModuleData>,
}

/// Player records and module data as last committed, by player id.
pub struct TurnCache {
    enabled: AtomicBool,
    players: quick_cache::sync::Cache<String, Arc<CachedPlayer>>,
    /// Writes queued for the database thread and not done, by player.
    pending: Mutex<HashMap<String, usize>>,
    /// Their sum, so that a read skips the lock when there are none.
    pending_total: AtomicUsize,
}

/// A write of a player queued for the database thread; dropped there once it is done and the
/// cache updated (or once it will never run).
pub struct PendingWrite {
    cache: Arc<TurnCache>,
    player_id: String,
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        let mut pending = self.cache.lock_pending();
        if let Some(count) = pending.get_mut(&self.player_id) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.player_id);
            }
        }
        self.cache.pending_total.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TurnCache {
    /// A cache of at most `capacity` players (at least one), in use from the start.
    pub fn new(capacity: usize) -> TurnCache {
        TurnCache {
            enabled: AtomicBool::new(true),
            players: quick_cache::sync::Cache::new(capacity.max(1)),
            pending: Mutex::new(HashMap::new()),
            pending_total: AtomicUsize::new(0),
        }
    }

    /// Marks a write of `player_id` as queued, before it is sent to the database thread: until
    /// the mark is dropped, the player's turns read the file.
    pub fn write_pending(self: &Arc<Self>, player_id: &str) -> PendingWrite {
        *self.lock_pending().entry(player_id.to_owned()).or_default() += 1;
        self.pending_total.fetch_add(1, Ordering::AcqRel);
        PendingWrite {
            cache: self.clone(),
            player_id: player_id.to_owned(),
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The record and `module`'s data of a player, if both are cached and the cache is in use.
    pub fn get(&self, player_id: &str, module: &str) -> Option<(Player, ModuleData)> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        if self.pending_total.load(Ordering::Acquire) > 0
            && self.lock_pending().contains_key(player_id)
        {
            return None;
        }
        let cached = self.players.get(player_id)?;
        let data = cached.modules.get(module)?;
        Some((cached.record.clone(), data.clone()))
    }

    /// Database thread only: what a turn read from the file.
    pub fn loaded(&self, player_id: &str, module: &str, record: &Player, data: &ModuleData) {
        self.update(player_id, |cached| {
            let mut modules = cached.map(|cached| cached.modules).unwrap_or_default();
            modules.insert(module.to_owned(), data.clone());
            Some(CachedPlayer {
                record: record.clone(),
                modules,
            })
        });
    }

    /// Database thread only, after a commit: what a turn wrote (`None`: unchanged). A player
    /// no longer cached stays so: the next turn reads the file.
    pub fn written(
        &self,
        player_id: &str,
        module: &str,
        record: Option<&Player>,
        data: Option<&ModuleData>,
    ) {
        self.update(player_id, |cached| {
            let mut cached = cached?;
            if let Some(record) = record {
                cached.record = record.clone();
            }
            if let Some(data) = data {
                cached.modules.insert(module.to_owned(), data.clone());
            }
            Some(cached)
        });
    }

    /// Database thread only: the player changed in a way the cache does not follow (an
    /// operator grant), or a write failed; the next turn reads the file.
    pub fn forget(&self, player_id: &str) {
        self.players.remove(player_id);
    }

    /// Database thread only: starts or stops using the cache. Either way it starts empty, as
    /// what it held may be out of date once another process has written.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(false, Ordering::Release);
        self.players.clear();
        self.enabled.store(enabled, Ordering::Release);
    }

    /// Whether turns read the cache now.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Replaces a player's entry with `change` of a copy of it (`None`: removes it). Nothing
    /// while the cache is not in use.
    fn update(
        &self,
        player_id: &str,
        change: impl FnOnce(Option<CachedPlayer>) -> Option<CachedPlayer>,
    ) {
        if !self.enabled() {
            return;
        }
        let current = self.players.get(player_id).map(Arc::unwrap_or_clone);
        match change(current) {
            Some(cached) => self.players.insert(player_id.to_owned(), Arc::new(cached)),
            None => {
                self.players.remove(player_id);
            }
        }
    }
}
