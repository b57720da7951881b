//! The players part of the admin API: what an operator of a live game needs from the original
//! framework's Django admin.
//!
//! - `GET /admin/players?account=<account>`: the player of an account (`players` is empty if
//!   there is none).
//! - `GET /admin/players/{player_id}`: the record, the account, and every module's data.
//! - `POST /admin/players/{player_id}/grant` `{"operator", "reason", "gold"?, "diamond"?,
//!   "items"?}`: adds (negative: takes) gold, diamonds and items, under the player's turn like
//!   a game command and in one transaction with its audit row; refused (`ret` 1) if a balance
//!   would go below zero.
//! - `POST /admin/players/{player_id}/revoke` `{"operator", "reason"}`: ends every session of
//!   the player on every host (this host's cache at once).
//! - `GET /admin/audit[?player_id=...][&limit=N]`: who did what to whom, when and why, with the
//!   state before and after, newest first. Nothing in the API edits or deletes it.

use crate::error::ApiError;
use crate::http::{read_body, Reply};
use crate::state::AppState;
use crate::store::{AuditNote, Grant, StoreError};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Longest operator name and reason, in characters.
const MAX_OPERATOR_CHARS: usize = 64;
const MAX_REASON_CHARS: usize = 500;
/// Most audit rows one request returns.
const MAX_AUDIT_ROWS: u32 = 1000;

/// `GET /admin/players?account=...`
pub async fn find(state: &AppState, query: Option<&str>) -> Result<Reply, ApiError> {
    let account = param(query, "account").ok_or_else(|| {
        ApiError::BadRequest(
            "give the account to look for: /admin/players?account=<account>".into(),
        )
    })?;
    let found = state
        .store
        .find_player(&account)
        .await
        .map_err(store_error)?;
    Ok(Reply::ok(
        json!({ "ret": 0, "players": found.into_iter().collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/players/{player_id}`
pub async fn show(state: &AppState, player_id: &str) -> Result<Reply, ApiError> {
    let details = state
        .store
        .player_details(player_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_player(player_id))?;
    Ok(Reply::ok(json!({ "ret": 0, "player": details })))
}

/// What a grant request carries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    operator: String,
    reason: String,
    #[serde(default)]
    gold: i64,
    #[serde(default)]
    diamond: i64,
    #[serde(default)]
    items: BTreeMap<String, i64>,
}

/// `POST /admin/players/{player_id}/grant`
pub async fn grant(state: &AppState, player_id: &str, body: Bytes) -> Result<Reply, ApiError> {
    let request: GrantRequest = parse(
        &body,
        r#"{"operator": "...", "reason": "...", "gold": 500, "diamond": 0, "items": {"potion": 1}}"#,
    )?;
    let note = note(state, request.operator, request.reason)?;
    let grant = Grant {
        gold: request.gold,
        diamond: request.diamond,
        items: request.items.into_iter().filter(|(_, n)| *n != 0).collect(),
    };
    if grant == Grant::default() {
        return Err(ApiError::BadRequest(
            "the grant changes nothing: give gold, diamond or items (negative amounts take away)"
                .into(),
        ));
    }
    // The player's turn, as for a game command: no command of theirs runs meanwhile.
    let _turn = state.player_locks.lock(player_id).await;
    match state.store.grant(player_id, &grant, &note).await {
        Ok(entry) => {
            slog::info!(state.log, "operator grant"; "operator" => &note.operator,
                "player" => player_id, "reason" => &note.reason, "audit_id" => entry.id);
            Ok(Reply::ok(json!({ "ret": 0, "audit": entry })))
        }
        Err(StoreError::Refused(why)) => Ok(Reply::ok(json!({ "ret": 1, "msg": why }))),
        Err(e) => Err(store_error_for(player_id, e)),
    }
}

/// The body of a change that needs only who asks and why (a revoke, a fleet rollback).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WhoAndWhy {
    pub(super) operator: String,
    pub(super) reason: String,
}

/// `POST /admin/players/{player_id}/revoke`
pub async fn revoke(state: &AppState, player_id: &str, body: Bytes) -> Result<Reply, ApiError> {
    let request: WhoAndWhy = parse(&body, r#"{"operator": "...", "reason": "..."}"#)?;
    let note = note(state, request.operator, request.reason)?;
    let entry = state
        .store
        .revoke_sessions(player_id, &note)
        .await
        .map_err(|e| store_error_for(player_id, e))?;
    // Other hosts drop their cached sessions within `session.recheck_secs`.
    state.sessions.end_player(player_id, note.at_ms);
    slog::info!(state.log, "operator revoke"; "operator" => &note.operator,
        "player" => player_id, "reason" => &note.reason, "audit_id" => entry.id);
    Ok(Reply::ok(json!({ "ret": 0, "audit": entry })))
}

/// `GET /admin/audit[?player_id=...][&limit=N]`
pub async fn audit(state: &AppState, query: Option<&str>) -> Result<Reply, ApiError> {
    let player_id = param(query, "player_id");
    let limit = match param(query, "limit") {
        None => 100,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_AUDIT_ROWS).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_AUDIT_ROWS}"))
            })?,
    };
    let entries = state
        .store
        .audit_log(player_id.as_deref(), limit)
        .await
        .map_err(store_error)?;
    Ok(Reply::ok(json!({ "ret": 0, "entries": entries })))
}

/// Who asks and why, checked, stamped with the host clock.
pub(super) fn note(
    state: &AppState,
    operator: String,
    reason: String,
) -> Result<AuditNote, ApiError> {
    let (operator, reason) = (operator.trim().to_owned(), reason.trim().to_owned());
    if operator.is_empty() || operator.chars().count() > MAX_OPERATOR_CHARS {
        return Err(ApiError::BadRequest(format!(
            "`operator` (who you are, kept in the audit log) must be 1 to {MAX_OPERATOR_CHARS} characters"
        )));
    }
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadRequest(format!(
            "`reason` (why, kept in the audit log) must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(AuditNote {
        operator,
        reason,
        at_ms: state.clock.now_millis(),
    })
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    example: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body must be JSON such as {example}: {e}")))
}

/// The value of `name` in a query string, percent-decoded.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

fn no_player(player_id: &str) -> ApiError {
    ApiError::NotFound(format!("no player `{player_id}`"))
}

fn store_error_for(player_id: &str, error: StoreError) -> ApiError {
    match error {
        StoreError::NoSuchPlayer(_) => no_player(player_id),
        other => store_error(other),
    }
}

pub(super) fn store_error(error: StoreError) -> ApiError {
    ApiError::unavailable("the database is unavailable, try again shortly", error)
}

/// Reads a request body under the client API's limit.
pub async fn body(
    state: &AppState,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<Bytes, ApiError> {
    read_body(request, &state.config.server).await
}
