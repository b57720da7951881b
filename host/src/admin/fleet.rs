//! `POST /admin/fleet/{module}/rollback` (`{"operator": …, "reason": …}`): the module's canary
//! stops, or without one its previous published release becomes desired again on every host
//! (`game-host rollback`). `POST /admin/fleet/{module}/promote`: its canary serves every
//! player (`game-host promote`).
//!
//! `GET /admin/fleet`: every module's desired release, and every host of the fleet as it last
//! reported itself (address, `game-host` version, last seen, what it serves and refused), read
//! from the shared database. A module's `hosts` says, host by host, whether each one serves
//! the desired release, serves another, or refused it and why.

use super::players::{note, parse, store_error, WhoAndWhy};
use crate::error::ApiError;
use crate::fleet::ModuleReport;
use crate::http::Reply;
use crate::state::AppState;
use crate::store::fleet::{FleetChange, FleetOutcome};
use bytes::Bytes;
use serde_json::{json, Value};

pub async fn show(state: &AppState) -> Result<Reply, ApiError> {
    let fleet = state.store.fleet();
    let desired = fleet.desired().await.map_err(store_error)?;
    let hosts = fleet.hosts().await.map_err(store_error)?;
    let now_ms = state.clock.now_millis();
    // A host's report as written; one that cannot be read shows as serving nothing.
    let reports: Vec<(String, Vec<ModuleReport>)> = hosts
        .iter()
        .map(|h| {
            let modules = serde_json::from_str(&h.modules).unwrap_or_default();
            (h.host_id.clone(), modules)
        })
        .collect();
    let modules: Vec<Value> = desired
        .iter()
        .map(|d| {
            let on_hosts: Vec<Value> = reports
                .iter()
                .map(|(host_id, modules)| {
                    let report = modules.iter().find(|m| m.module == d.module);
                    let serving = report.and_then(|m| m.serving.clone());
                    let refused = report
                        .and_then(|m| m.refused.clone())
                        .filter(|r| r.release == d.release_id);
                    let state = match (&serving, &refused) {
                        (Some(s), _) if *s == d.release_id => "serving",
                        (_, Some(_)) => "refused",
                        _ => "behind",
                    };
                    json!({
                        "host_id": host_id,
                        "state": state,
                        "serving": serving,
                        "refused": refused.map(|r| r.reason),
                    })
                })
                .collect();
            json!({
                "module": d.module,
                "desired": d.release_id,
                "previous": d.previous_id,
                "canary": d.canary_id,
                "canary_percent": d.canary_percent,
                "watched_until_ms": d.watch_until_ms,
                "changed_at_ms": d.changed_at_ms,
                "hosts": on_hosts,
            })
        })
        .collect();
    let hosts: Vec<Value> = hosts
        .iter()
        .zip(&reports)
        .map(|(h, (_, modules))| {
            json!({
                "host_id": h.host_id,
                "address": h.address,
                "binary_version": h.binary_version,
                "started_at_ms": h.started_at_ms,
                "last_seen_ms": h.last_seen_ms,
                "seen_secs_ago": (now_ms - h.last_seen_ms).max(0) / 1000,
                "modules": modules,
            })
        })
        .collect();
    Ok(Reply::ok(json!({
        "ret": 0,
        "source": state.config.plugins.source,
        "this_host": state.config.server.host_id,
        "modules": modules,
        "hosts": hosts,
    })))
}

/// `POST /admin/fleet/{module}/rollback` and `…/promote`: `change`, as the body's operator
/// for its reason.
pub async fn change(
    state: &AppState,
    module: &str,
    body: Bytes,
    change: FleetChange,
) -> Result<Reply, ApiError> {
    let request: WhoAndWhy = parse(&body, r#"{"operator": "...", "reason": "..."}"#)?;
    let note = note(state, request.operator, request.reason)?;
    let fleet = &state.config.fleet;
    let outcome = state
        .store
        .fleet()
        .change(
            module,
            &change,
            None,
            &note,
            fleet.keep_releases,
            (fleet.watch_secs * 1000) as i64,
        )
        .await
        .map_err(store_error)?;
    Ok(Reply::ok(match outcome {
        FleetOutcome::Changed { after, .. } => {
            slog::info!(state.log, "fleet change"; "change" => ?change, "operator" => &note.operator,
                "module" => module, "release" => &after.release_id, "reason" => &note.reason);
            json!({ "ret": 0, "module": module, "desired": after.release_id, "canary": after.canary_id, "previous": after.previous_id })
        }
        FleetOutcome::Unchanged(why) | FleetOutcome::Refused(why) => {
            json!({ "ret": 1, "msg": why })
        }
    }))
}
