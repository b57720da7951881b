//! The admin API, on its own listener: what runs, and reloads and rollbacks on demand.
//!
//! - `GET /admin/modules`: each serving module (version, sha256, generation, load time,
//!   calls, failures, in-flight, the versions kept for rollback, the migrator kept after a
//!   step back to an older saved-data schema), the versions draining or stuck, those that did
//!   not leave memory, and each module's last saved-data check (running or done).
//! - `POST /admin/modules/{name}/reload`: load the module's library from the plugins directory
//!   now, even if that content was refused before (its stored data may be fixed since).
//! - `POST /admin/modules/{name}/rollback`: serve the previous version again.
//! - `GET /admin/events`: recent load, swap, refuse, drain, retire, leak, rollback, check (a
//!   saved-data check passed) and rewrite (stored data rewritten after a step back) events.
//! - `POST /admin/restart`: start a successor process with this one's sockets (as `SIGUSR2`);
//!   answers once it serves, then this process drains and exits.
//! - `GET /admin/fleet`: every module's published release and every host's report;
//!   `POST /admin/fleet/publish`: a library published (checked, stored, made desired);
//!   `POST /admin/fleet/{module}/rollback` and `…/promote`: the fleet's canary stopped or
//!   promoted, or the fleet back to the previous release ([`fleet`]).
//! - `GET /metrics`: Prometheus text format ([`crate::metrics`]).
//! - Players and the audit log: see [`players`].
//! - `GET /console/`: the operator console, a page on this API ([`console`]).
//!
//! A bearer token (`admin.token`, or `GAME_HOST_ADMIN_TOKEN`) is required whenever one is set,
//! and the host refuses to start with the admin listener off loopback without one.

mod console;
mod fleet;
mod players;

use crate::error::ApiError;
use crate::http::{error_reply, render, Reply};
use crate::listener::Peer;
use crate::plugins::archive::Kept;
use crate::plugins::{Change, ModuleVersion};
use crate::state::AppState;
use crate::store::fleet::FleetChange;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::time::UNIX_EPOCH;

/// Serves one admin request. Never fails: every error becomes a JSON reply.
pub async fn handle(
    state: AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    if method == Method::GET {
        if let Some(page) = console::serve(&path) {
            return Ok(page);
        }
    }
    let caller = request
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "-".to_owned(), |peer| peer.0.to_string());
    let authorized = authorize(&state, &request);
    // The one reply that is not JSON, and no access line: a scraper calls every few seconds.
    if authorized.is_ok() && method == Method::GET && path == "/metrics" {
        return Ok(metrics(&state).await);
    }
    let refused = authorized.is_err();
    let reply = match authorized {
        Ok(()) => route(&state, request).await,
        Err(e) => Err(e),
    };
    let reply = reply.unwrap_or_else(|error| error_reply(&error, None, &state.log));
    if refused {
        slog::warn!(state.log, "admin request refused: no valid token"; "method" => %method,
            "path" => &path, "caller" => &caller);
    } else if method == Method::GET {
        slog::info!(state.log, "admin request"; "method" => %method, "path" => &path,
            "status" => reply.status, "caller" => &caller);
    } else {
        // Every change (reload, rollback, restart, grant, revoke) says who asked for it.
        slog::warn!(state.log, "admin change"; "method" => %method, "path" => &path,
            "status" => reply.status, "caller" => &caller);
    }
    Ok(render(reply))
}

/// Checks the bearer token, if one is configured. Compares digests, in constant time, so the
/// time taken says nothing about how much of a guess was right (nor about the token's length).
fn authorize(state: &AppState, request: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(expected) = state.config.admin.token.as_deref() else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    if same_digest(given, expected) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the admin API needs `Authorization: Bearer <admin.token>`".into(),
        ))
    }
}

/// Whether `a` and `b` have the same SHA-256, comparing every byte of the digests whatever
/// differs (`black_box` keeps the compiler from ending the loop early).
fn same_digest(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    let differing = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    differing == 0
}

async fn route(state: &AppState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["admin", "players"]) => players::find(state, query).await,
        (&Method::GET, ["admin", "players", player_id]) => players::show(state, player_id).await,
        (&Method::POST, ["admin", "players", player_id, "grant"]) => {
            let body = players::body(state, request).await?;
            players::grant(state, player_id, body).await
        }
        (&Method::POST, ["admin", "players", player_id, "revoke"]) => {
            let body = players::body(state, request).await?;
            players::revoke(state, player_id, body).await
        }
        (&Method::GET, ["admin", "audit"]) => players::audit(state, query).await,
        (&Method::GET, ["admin", "modules"]) => Ok(modules(state).await),
        (&Method::GET, ["admin", "fleet"]) => fleet::show(state).await,
        (&Method::GET, ["admin", "events"]) => Ok(Reply::ok(
            json!({ "ret": 0, "events": state.registry.events().recent() }),
        )),
        (&Method::POST, ["admin", "modules", name, "reload"]) => reload(state, name).await,
        (&Method::POST, ["admin", "modules", name, "rollback"]) => rollback(state, name).await,
        (&Method::POST, ["admin", "fleet", "publish"]) => fleet::publish(state, request).await,
        (&Method::POST, ["admin", "fleet", module, "rollback"]) => {
            let body = players::body(state, request).await?;
            let change = FleetChange::RollBack { expected: None };
            fleet::change(state, module, body, change).await
        }
        (&Method::POST, ["admin", "fleet", module, "promote"]) => {
            let body = players::body(state, request).await?;
            fleet::change(state, module, body, FleetChange::Promote).await
        }
        (&Method::POST, ["admin", "restart"]) => restart(state).await,
        (
            _,
            ["admin", "modules"]
            | ["admin", "events"]
            | ["admin", "fleet"]
            | ["metrics"]
            | ["admin", "players"]
            | ["admin", "players", _]
            | ["admin", "audit"],
        ) => Err(ApiError::MethodNotAllowed {
            path: path.to_owned(),
            allow: "GET",
        }),
        (
            _,
            ["admin", "modules", _, "reload" | "rollback"]
            | ["admin", "fleet", "publish"]
            | ["admin", "fleet", _, "rollback" | "promote"]
            | ["admin", "restart"]
            | ["admin", "players", _, "grant" | "revoke"],
        ) => Err(ApiError::MethodNotAllowed {
            path: path.to_owned(),
            allow: "POST",
        }),
        _ => Err(ApiError::NoSuchEndpoint(path.to_owned())),
    }
}

/// The metrics as Prometheus text.
async fn metrics(state: &AppState) -> Response<Full<Bytes>> {
    let text = state
        .metrics
        .render(crate::metrics::Scrape {
            modules: &state.registry,
            store: state.store.as_ref(),
            max_stuck_calls: state.config.plugins.max_stuck_calls,
            now_ms: state.clock.now_millis(),
            log: &state.log,
        })
        .await;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn restart(state: &AppState) -> Result<Reply, ApiError> {
    let Some(restart) = &state.restart else {
        return Err(ApiError::NotFound(
            "this host cannot restart itself (it was not started by `game-host serve`)".into(),
        ));
    };
    Ok(match restart.request().await {
        Ok(pid) => Reply::ok(json!({
            "ret": 0, "successor_pid": pid,
            "msg": "the successor serves; this host drains its connections and exits",
        })),
        Err(why) => Reply::ok(
            json!({ "ret": 1, "msg": format!("restart failed, this host keeps serving: {why}") }),
        ),
    })
}

async fn modules(state: &AppState) -> Reply {
    let registry = &state.registry;
    let mut modules = Vec::new();
    for version in registry.routes().versions() {
        let previous = registry.history(&version.meta.name);
        let migrator = registry.migrator(&version.meta.name);
        modules.push(describe(
            &version,
            &previous,
            migrator.as_deref(),
            state.config.plugins.max_stuck_calls,
        ));
    }
    let retirement = registry.retirement();
    Reply::ok(json!({
        "ret": 0,
        "host_id": state.config.server.host_id,
        // Who is connected to this host now (`GET /ws`).
        "online": {
            "players": state.pushes.online_players(),
            "sockets": state.websockets.open(),
        },
        "modules": modules,
        "draining": retirement.draining(),
        "not_unloaded": retirement.leaked(),
        "retired": retirement.retired_count(),
        // The last saved-data check of each module: running, passed, failed or aborted.
        "data_checks": registry.data_checks(),
    }))
}

fn describe(
    version: &ModuleVersion,
    previous: &[Kept],
    migrator: Option<&ModuleVersion>,
    max_stuck: u64,
) -> Value {
    let counts = version.stats.counts();
    let meta = &version.meta;
    let loaded_at_ms = version
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "name": meta.name,
        "prefix": meta.prefix,
        "version": meta.version,
        "sha256": meta.sha256,
        "file": meta.file.display().to_string(),
        "commands": meta.commands,
        "refusals": meta.refusals,
        "schema": meta.schema,
        "generation": version.generation,
        "loaded_at_ms": loaded_at_ms,
        "in_flight": counts.in_flight,
        "calls": counts.calls,
        "failures": counts.failures,
        // Calls past their deadline still running; at `plugins.max_stuck_calls` the module's
        // commands are refused (-6) and it is unhealthy until they return.
        "stuck_calls": counts.stuck,
        "healthy": version.stats.healthy(max_stuck),
        "previous": previous,
        // The data tables this version read: their hash and files (null: the module has none).
        "tables": version.tables.as_ref().map(|t| json!({ "sha256": t.sha256, "files": t.files })),
        // A newer version kept loaded after a step back to an older schema, to downgrade the
        // saved data it wrote (docs/modules.md, "Saved data that changes shape").
        "migrator": migrator.map(|m| json!({
            "version": m.meta.version,
            "schema": m.meta.schema,
            "sha256": m.meta.sha256,
            "calls": m.stats.counts().calls,
            "failures": m.stats.counts().failures,
        })),
    })
}

async fn reload(state: &AppState, name: &str) -> Result<Reply, ApiError> {
    let version = serving(state, name)?;
    Ok(change_reply(
        state.registry.reload_file(&version.meta.file).await,
    ))
}

async fn rollback(state: &AppState, name: &str) -> Result<Reply, ApiError> {
    serving(state, name)?;
    if state.config.plugins.source == crate::config::PluginsSource::Database {
        // A host-local step back would leave this host off the fleet's release until the next
        // publish: the fleet steps back together.
        return Ok(Reply::ok(json!({
            "ret": 1,
            "change": "refused",
            "msg": format!("this host runs the fleet's releases (plugins.source = \"database\"): roll the whole fleet back with POST /admin/fleet/{name}/rollback or `game-host rollback {name}`"),
        })));
    }
    Ok(match state.registry.rollback(name).await {
        Ok(change) => change_reply(change),
        Err(why) => Reply::ok(json!({ "ret": 1, "change": "refused", "msg": why.to_string() })),
    })
}

fn serving(state: &AppState, name: &str) -> Result<std::sync::Arc<ModuleVersion>, ApiError> {
    state
        .registry
        .routes()
        .versions()
        .into_iter()
        .find(|v| v.meta.name == name)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no module `{name}` is serving; to load a new one, put its library in the plugins directory"
            ))
        })
}

/// `ret: 0` with what changed, or `ret: 1` with why it was refused.
fn change_reply(change: Change) -> Reply {
    Reply::ok(match change {
        Change::Loaded { module, generation } => {
            json!({ "ret": 0, "change": "loaded", "module": module, "generation": generation })
        }
        Change::Swapped { module, generation } => {
            json!({ "ret": 0, "change": "swapped", "module": module, "generation": generation })
        }
        Change::Unchanged => {
            json!({ "ret": 0, "change": "unchanged", "msg": "the library is what already serves (or was already refused)" })
        }
        Change::Removed { module } => json!({ "ret": 0, "change": "removed", "module": module }),
        Change::Refused(reason) => json!({ "ret": 1, "change": "refused", "msg": reason }),
    })
}
