//! Safe retries: the `Idempotency-Key` header of `POST /logic` (docs/PROTOCOL.md, "Safe
//! retries"), what identifies a request, and the sweep of expired keys.
//!
//! A keyed command whose turn writes stores its reply under `(player, key)` with the write,
//! atomically (the stores: [`crate::store::TurnKey`]); the same key again within
//! [`WINDOW_MS`] gets that reply without running the command, if the request is the same
//! ([`fingerprint`]), or a refusal if it is not. This module owns the header's rules and the
//! fingerprint; [`crate::game`] decides, the stores look up and write.

use crate::clock::Clock;
use crate::error::ApiError;
use crate::protocol::Cmd;
use crate::store::Store;
use hyper::header::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The request header (the IETF draft's name), as hyper spells header names.
pub const HEADER: &str = "idempotency-key";

/// The header on a reply that was replayed from a stored key, with the value `true`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a stored key is honoured: 24 hours. Older ones are ignored, then swept.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Longest key, in characters (bytes: a key is ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// What a bad header is told.
const KEY_RULE: &str = "`Idempotency-Key` must be 1 to 255 printable ASCII characters (0x21 to 0x7E: no spaces or control characters), sent once; a random UUID is a good key";

/// What a key reused for another request is told.
pub const REUSED: &str =
    "this Idempotency-Key was used for another request of this player: send a new key for a new request";

/// A valid key from a request's `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key: `None` without the header, -2 if it is not a valid key (or is sent
    /// more than once: which one would count is not obvious).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let once = values.next().is_none();
        match std::str::from_utf8(value.as_bytes()) {
            Ok(key) if once => IdempotencyKey::from_text(key).map(Some),
            _ => Err(ApiError::BadRequest(KEY_RULE.into())),
        }
    }

    /// A key sent as text (a socket command's `key`), -2 if it is not a valid key.
    pub fn from_text(key: &str) -> Result<IdempotencyKey, ApiError> {
        let bytes = key.as_bytes();
        let valid = (1..=MAX_KEY_LEN).contains(&bytes.len())
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        match valid {
            true => Ok(IdempotencyKey(key.to_owned())),
            false => Err(ApiError::BadRequest(KEY_RULE.into())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a request for its key: sha256 (hex) over its command and the canonical
/// JSON of its data. Canonical because serde_json's `Map` is a `BTreeMap` in this workspace
/// (its `preserve_order` feature is off), so keys serialize sorted, at every depth, however
/// the client ordered them; a unit test fails should that feature ever be turned on.
pub fn fingerprint(cmd: Cmd, data: &Map<String, Value>) -> String {
    let mut hash = Sha256::new();
    hash.update(cmd.as_str().as_bytes());
    // A separator that JSON text cannot start with: no two requests hash the same bytes.
    hash.update(b"\n");
    hash.update(serde_json::to_vec(data).expect("a JSON object serializes"));
    hex::encode(hash.finalize())
}

/// The moment at or before which a key stored is expired, at `now_ms`.
pub fn expired_at(now_ms: i64) -> i64 {
    now_ms.saturating_sub(WINDOW_MS)
}

/// How often the sweep runs, and how many rows one statement deletes at most: short
/// statements, so that the sweep never holds the table long.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
const SWEEP_BATCH: u32 = 1000;

/// The background sweep: every hour (and once at start), deletes the keys past the window,
/// a batch per statement, until none is left. Lookups ignore expired keys anyway: the sweep
/// only keeps the table small. Runs until aborted (the host's shutdown; each statement is
/// cancel-safe on its own, ARCHITECTURE.md "Cancellation").
pub async fn sweep(store: Arc<dyn Store>, clock: Arc<dyn Clock>, log: slog::Logger) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match sweep_once(store.as_ref(), expired_at(clock.now_millis())).await {
            Ok(0) => {}
            Ok(deleted) => slog::info!(log, "expired idempotency keys deleted"; "keys" => deleted),
            // The next sweep tries again; nothing depends on it in the meantime.
            Err(e) => slog::warn!(log, "deleting expired idempotency keys failed"; "error" => %e),
        }
    }
}

/// Deletes every key created at or before `expired_at_ms`, a batch at a time; how many.
pub async fn sweep_once(
    store: &dyn Store,
    expired_at_ms: i64,
) -> Result<u64, crate::store::StoreError> {
    let mut total = 0;
    loop {
        let deleted = store
            .delete_expired_keys(expired_at_ms, SWEEP_BATCH)
            .await?;
        total += deleted;
        if deleted < u64::from(SWEEP_BATCH) {
            return Ok(total);
        }
        // Other work on the runtime (and the database) goes between batches.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests;
