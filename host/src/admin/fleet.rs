//! `POST /admin/fleet/{module}/rollback` (`{"operator": …, "reason": …}`): the module's canary
//! stops, or without one its previous published release becomes desired again on every host
//! (`game-host rollback`). `POST /admin/fleet/{module}/promote`: its canary serves every
//! player (`game-host promote`).
//!
//! `POST /admin/fleet/publish` (`{"operator", "reason", "library": BASE64, "signature":
//! BASE64?, "tables": {"goods.csv": TEXT}?, "canary": PERCENT?}`): `game-host publish` through
//! the API: the library written to a private folder on this host, checked and published
//! exactly as the command line does.
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
                    // The host's last refusal, if it is of this row's release or canary.
                    let refusal = report.and_then(|m| m.refused.clone());
                    let refused = |release: &str| {
                        refusal
                            .as_ref()
                            .filter(|r| r.release == release)
                            .map(|r| r.reason.clone())
                    };
                    let state = |here: Option<&String>, wanted: &str| match (here, refused(wanted))
                    {
                        (Some(here), _) if here == wanted => "serving",
                        (_, Some(_)) => "refused",
                        _ => "behind",
                    };
                    let canary = report.and_then(|m| m.canary.as_ref());
                    json!({
                        "host_id": host_id,
                        "state": state(serving.as_ref(), &d.release_id),
                        "serving": serving,
                        "refused": refused(&d.release_id),
                        "canary_state": d.canary_id.as_deref().map(|c| state(canary, c)),
                        "canary_refused": d.canary_id.as_deref().and_then(refused),
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
                "players_online": h.players_online,
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
    let outcome = state
        .store
        .fleet()
        .change(module, &change, None, &note, state.config.fleet.retention())
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

/// The body of `POST /admin/fleet/publish`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    operator: String,
    reason: String,
    /// The library's bytes, base64.
    library: String,
    /// Its detached signature (`.sig`), base64.
    #[serde(default)]
    signature: Option<String>,
    /// Its data tables: file name to text.
    #[serde(default)]
    tables: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    canary: Option<u8>,
}

/// `POST /admin/fleet/publish`: the library written to a private folder, then published by
/// `game-host publish` in a process of its own, with this host's configuration. The check
/// loads the library and runs its init: in a process of its own, a library that crashes,
/// hangs or never leaves memory cannot touch this host, and its module thread may exit.
pub async fn publish(
    state: &AppState,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<Reply, ApiError> {
    let config = &state.config;
    // Base64 takes 4 bytes for 3; the tables are read whole into memory anyway.
    let limit = (config.fleet.max_library_bytes as usize / 3 + 1) * 4
        + crate::plugins::tables::MAX_BYTES as usize
        + (64 << 10);
    let body = crate::http::read_body_within(request, limit, &config.server).await?;
    let request: PublishRequest = parse(
        &body,
        r#"{"operator": "...", "reason": "...", "library": "<base64>", "canary": 10}"#,
    )?;
    let note = note(state, request.operator, request.reason)?;
    if request.canary.is_some_and(|p| !(1..=99).contains(&p)) {
        return Err(ApiError::BadRequest(
            "`canary` is the percent of players the release serves: 1 to 99".into(),
        ));
    }
    let library = base64_field("library", &request.library)?;
    let signature = request
        .signature
        .as_deref()
        .map(|text| base64_field("signature", text))
        .transpose()?;
    let tables = request.tables.unwrap_or_default();
    let names_ok = tables.keys().all(|name| {
        !name.contains('/')
            && !name.starts_with('.')
            && (name.ends_with(".csv") || name.ends_with(".json"))
    });
    if !names_ok {
        return Err(ApiError::BadRequest(
            "`tables` maps file names (`goods.csv`, `reward.json`, no folders) to their text"
                .into(),
        ));
    }
    let cannot =
        |e: std::io::Error| ApiError::unavailable("cannot stage the library to publish", e);
    // Only this host's user can enter it; the configuration written there holds the database's
    // password, so it never goes on a command line.
    let dir = crate::check::private_dir().map_err(cannot)?;
    let staged = Staged { dir };
    let file = staged.dir.join("library.so");
    let tables_dir = staged.dir.join("tables");
    let settings = staged.dir.join("config.toml");
    let written = (|| {
        std::fs::write(&file, &library)?;
        if let Some(signature) = &signature {
            std::fs::write(
                crate::plugins::trust::signature::signature_path(&file),
                signature,
            )?;
        }
        if !tables.is_empty() {
            std::fs::create_dir(&tables_dir)?;
            for (name, text) in &tables {
                std::fs::write(tables_dir.join(name), text)?;
            }
        }
        let text = toml::to_string(config.as_ref()).map_err(std::io::Error::other)?;
        std::fs::write(&settings, text)
    })();
    written.map_err(cannot)?;
    let mut command = tokio::process::Command::new(&state.game_host);
    command
        .arg("publish")
        .arg(&file)
        .arg("--config")
        .arg(&settings)
        // `--name=value`: a reason that starts with `-` is still a value.
        .arg(format!("--operator={}", note.operator))
        .arg(format!("--reason={}", note.reason));
    // The configuration is the file written above, whole: the host's own `GAME_HOST_*`
    // variables were applied to it already, and in the child they would override the flags
    // the host applied after them (a `--database-url` over `GAME_HOST_DATABASE_URL`).
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .starts_with(crate::config::env::PREFIX)
        {
            command.env_remove(name);
        }
    }
    if !tables.is_empty() {
        command.arg("--tables").arg(&tables_dir);
    }
    if let Some(percent) = request.canary {
        command.args(["--canary", &percent.to_string()]);
    }
    // An admin client that hangs up ends the publish: its transaction, cut, rolls back.
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = command.output().await.map_err(|e| {
        ApiError::unavailable(
            format!("cannot run {} publish", state.game_host.display()),
            e,
        )
    })?;
    // The messages name the staged copy: say what it was.
    let said = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .trim()
            .trim_start_matches("game-host: ")
            .replace(&file.display().to_string(), "the library")
    };
    let (stdout, stderr) = (said(&output.stdout), said(&output.stderr));
    slog::info!(state.log, "fleet publish"; "operator" => &note.operator, "reason" => &note.reason,
        "canary" => ?request.canary, "success" => output.status.success(), "said" => &stdout, "error" => &stderr);
    Ok(Reply::ok(match output.status.success() {
        true => json!({ "ret": 0, "msg": stdout }),
        false => json!({ "ret": 1, "msg": if stderr.is_empty() { stdout } else { stderr } }),
    }))
}

/// The private folder a publish is staged in, removed however the request ends.
struct Staged {
    dir: std::path::PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A base64 field of the request decoded. (A function, not a closure: a closure over borrowed
/// text alive across the publish's awaits would keep the handler's future from being `Send`.)
fn base64_field(what: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ApiError::BadRequest(format!("`{what}` is not base64: {e}")))
}
