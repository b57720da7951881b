//! Sessions this host has read recently, so that a request does not cost a database query.
//!
//! The store stays the truth. An entry is trusted for `recheck` after it was read from the
//! store (or written by a login here), never past the session's own expiry; after that the next
//! request reads the store again. A logout through this host removes the entry at once; one
//! through another host on the same database (or the other process during a restart) takes
//! effect here within `recheck`. `recheck = 0` turns the cache off.
//!
//! Measured (bench/RESULTS.md): the session query was one of a request's three database trips,
//! and the cache lifted `read` throughput by about a third.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many sessions are cached; past it, stale entries go, then all of them.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Entry {
    /// `None`: the session was ended here (a logout), at `checked_at_ms`.
    player_id: Option<String>,
    expires_at_ms: i64,
    /// When the store last vouched for the session.
    checked_at_ms: i64,
}

/// Recently seen sessions, keyed by token hash.
#[derive(Debug)]
pub struct SessionCache {
    recheck_ms: i64,
    entries: Mutex<HashMap<String, Entry>>,
    /// Players whose sessions were all ended here (an operator's revoke), and when: a read
    /// that began before cannot bring one of their sessions back.
    revoked: Mutex<HashMap<String, i64>>,
}

impl SessionCache {
    pub fn new(recheck_ms: i64) -> SessionCache {
        SessionCache {
            recheck_ms,
            entries: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashMap::new()),
        }
    }

    /// The player of a session the store vouched for less than `recheck` ago, if not expired.
    pub fn get(&self, token_hash: &str, now_ms: i64) -> Option<String> {
        let entries = self.lock();
        let entry = entries.get(token_hash)?;
        entry
            .player_id
            .clone()
            .filter(|_| self.is_fresh(entry, now_ms))
    }

    /// Remembers a session the store vouched for in a read that began at `now_ms`; ignored if
    /// the session was ended here since (a logout racing the read).
    pub fn insert(&self, token_hash: &str, player_id: &str, expires_at_ms: i64, now_ms: i64) {
        if self.recheck_ms <= 0 {
            return;
        }
        let revoked_at = self
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(player_id)
            .copied();
        if revoked_at.is_some_and(|at| at >= now_ms) {
            return;
        }
        let mut entries = self.lock();
        if let Some(ended) = entries.get(token_hash).filter(|e| e.player_id.is_none()) {
            if ended.checked_at_ms >= now_ms {
                return;
            }
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(token_hash) {
            entries.retain(|_, entry| self.is_fresh(entry, now_ms));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            token_hash.to_owned(),
            Entry {
                player_id: Some(player_id.to_owned()),
                expires_at_ms,
                checked_at_ms: now_ms,
            },
        );
    }

    /// Forgets a session ended at `now_ms` (logout), and keeps a read that began before from
    /// bringing it back.
    pub fn end(&self, token_hash: &str, now_ms: i64) {
        if self.recheck_ms <= 0 {
            return;
        }
        self.lock().insert(
            token_hash.to_owned(),
            Entry {
                player_id: None,
                expires_at_ms: i64::MAX,
                checked_at_ms: now_ms,
            },
        );
    }

    /// Forgets every session of `player_id`, all ended at `now_ms` (an operator's revoke), and
    /// keeps reads that began before from bringing any back.
    pub fn end_player(&self, player_id: &str, now_ms: i64) {
        if self.recheck_ms <= 0 {
            return;
        }
        {
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            // A read older than `recheck` is long finished: older marks can go.
            revoked.retain(|_, at| now_ms - *at < self.recheck_ms);
            revoked.insert(player_id.to_owned(), now_ms);
        }
        for entry in self.lock().values_mut() {
            if entry.player_id.as_deref() == Some(player_id) {
                entry.player_id = None;
                entry.checked_at_ms = now_ms;
                entry.expires_at_ms = i64::MAX;
            }
        }
    }

    fn is_fresh(&self, entry: &Entry, now_ms: i64) -> bool {
        now_ms < entry.expires_at_ms && now_ms - entry.checked_at_ms < self.recheck_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are plain data: one left by a panicking holder is still valid.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_for_recheck_then_read_again() {
        let cache = SessionCache::new(5_000);
        cache.insert("h", "p1", 1_000_000, 0);
        assert_eq!(cache.get("h", 4_999).as_deref(), Some("p1"));
        assert_eq!(cache.get("h", 5_000), None, "past recheck: ask the store");
        cache.insert("h", "p1", 1_000_000, 5_000);
        assert_eq!(cache.get("h", 9_999).as_deref(), Some("p1"));
        assert_eq!(cache.get("other", 0), None);
    }

    #[test]
    fn an_entry_never_outlives_its_session() {
        let cache = SessionCache::new(5_000);
        cache.insert("h", "p1", 1_000, 0);
        assert_eq!(cache.get("h", 999).as_deref(), Some("p1"));
        assert_eq!(cache.get("h", 1_000), None);
    }

    #[test]
    fn a_logout_is_seen_at_once() {
        let cache = SessionCache::new(5_000);
        cache.insert("h", "p1", 1_000_000, 0);
        cache.end("h", 1);
        assert_eq!(cache.get("h", 1), None);
    }

    #[test]
    fn a_read_that_began_before_a_logout_does_not_bring_the_session_back() {
        let cache = SessionCache::new(5_000);
        cache.end("h", 10);
        cache.insert("h", "p1", 1_000_000, 10);
        assert_eq!(cache.get("h", 11), None);
        // A later login's session with the same hash cannot happen (new token), but a later
        // read may cache again.
        cache.insert("h", "p1", 1_000_000, 11);
        assert_eq!(cache.get("h", 12).as_deref(), Some("p1"));
    }

    #[test]
    fn recheck_zero_caches_nothing() {
        let cache = SessionCache::new(0);
        cache.insert("h", "p1", 1_000_000, 0);
        assert_eq!(cache.get("h", 0), None);
    }

    #[test]
    fn a_full_cache_sheds_stale_entries_first() {
        let cache = SessionCache::new(5_000);
        for n in 0..MAX_ENTRIES {
            cache.insert(&format!("stale-{n}"), "p", 1_000_000, 0);
        }
        cache.insert("fresh", "p2", 1_000_000, 10_000);
        assert_eq!(cache.get("fresh", 10_001).as_deref(), Some("p2"));
        assert!(cache.lock().len() == 1, "the stale entries were dropped");
    }

    #[test]
    fn a_revoke_ends_every_session_of_the_player_and_only_theirs() {
        let cache = SessionCache::new(5_000);
        cache.insert("a1", "alice", 1_000_000, 0);
        cache.insert("a2", "alice", 1_000_000, 0);
        cache.insert("b1", "bob", 1_000_000, 0);
        cache.end_player("alice", 10);
        assert_eq!(cache.get("a1", 11), None);
        assert_eq!(cache.get("a2", 11), None);
        assert_eq!(cache.get("b1", 11).as_deref(), Some("bob"));
        // A read that began before the revoke (a third token, not cached yet) is not cached.
        cache.insert("a3", "alice", 1_000_000, 10);
        assert_eq!(cache.get("a3", 11), None);
        // A login after the revoke is.
        cache.insert("a4", "alice", 1_000_000, 12);
        assert_eq!(cache.get("a4", 13).as_deref(), Some("alice"));
    }
}
