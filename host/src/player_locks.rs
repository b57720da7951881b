//! Per-player locks: commands of one player run one at a time, different players in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// One async lock per player that currently has a command running or waiting.
#[derive(Default)]
pub struct PlayerLocks {
    /// A std `Mutex` guards only the map lookups, never held across `.await`; the per-player
    /// locks are tokio mutexes because a command holds one across its awaits.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one command of a player runs. Dropping it lets the next command of that player in.
pub struct PlayerGuard<'a> {
    guard: Option<OwnedMutexGuard<()>>,
    locks: &'a PlayerLocks,
    player_id: String,
}

impl PlayerLocks {
    /// Waits until no other command of `player_id` runs.
    pub async fn lock(&self, player_id: &str) -> PlayerGuard<'_> {
        let lock = self.map().entry(player_id.to_owned()).or_default().clone();
        PlayerGuard {
            guard: Some(lock.lock_owned().await),
            locks: self,
            player_id: player_id.to_owned(),
        }
    }

    /// The lock of `player_id` if no command of theirs runs now; `None` otherwise (a command
    /// that holds another player's lock must not wait for this one: two such commands could
    /// wait for each other).
    pub fn try_lock(&self, player_id: &str) -> Option<PlayerGuard<'_>> {
        let lock = self.map().entry(player_id.to_owned()).or_default().clone();
        let guard = PlayerGuard {
            guard: lock.try_lock_owned().ok(),
            locks: self,
            player_id: player_id.to_owned(),
        };
        // A guard without its lock still cleans the map entry up when it drops.
        guard.guard.is_some().then_some(guard)
    }

    /// Locks every player of `player_ids` in id order, each once: every command that locks
    /// several players takes them in the same order, so none waits for another in a cycle.
    pub async fn lock_all(&self, player_ids: &[String]) -> Vec<PlayerGuard<'_>> {
        let mut sorted: Vec<&String> = player_ids.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for player_id in sorted {
            guards.push(self.lock(player_id).await);
        }
        guards
    }

    /// How many players have an entry (for tests: entries go when unused).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PlayerGuard<'_> {
    /// The player this guard holds.
    pub fn player_id(&self) -> &str {
        &self.player_id
    }
}

impl Drop for PlayerGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Only the map holds it now: nobody runs or waits for this player, so forget the entry.
        if map
            .get(&self.player_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.player_id);
        }
    }
}
