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
