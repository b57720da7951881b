//! The game request path behind the HTTP layer: login, sessions, and running one command.
//!
//! A command runs as: route the prefix to a pinned module version, take the player's lock,
//! load the player record and the module's data, call the module on an executor thread
//! (under the call timeout), check what it returned, and commit the changes in one
//! transaction, only if the module succeeded and only if something changed.
//!
//! A keyed command (`Idempotency-Key`, [`crate::idempotency`]) looks its key up in the turn's
//! read: found for the same request, its stored reply is the answer and the module is not
//! called; found for another, the client's error. Otherwise it runs as any command, and its
//! reply is stored with its write.

use crate::error::ApiError;
use crate::idempotency::{self, IdempotencyKey};
use crate::player_locks::PlayerGuard;
use crate::plugins::migrator::{self, DowngradeError};
use crate::plugins::{CallError, CallInput, CallLimits, CallOutcome, ModuleVersion};
use crate::protocol::{Cmd, LogicRequest, LoginRequest};
use crate::push::{self, effects::ResolveError, effects::Resolved};
use crate::session;
use crate::state::AppState;
use crate::store::{ModuleData, SessionCheck, StoreError, StoredReply, TurnKey, TurnOptions};
use plugin_api::effects::Effects;
use plugin_api::Player;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A logged-in player's new session.
#[derive(Debug)]
pub struct Login {
    pub player_id: String,
    pub token: String,
}

/// How a command ended, when the host had no error to report.
#[derive(Debug)]
pub enum CommandReply {
    /// `ret: 0` with the reply data: the module's JSON object, checked and passed on as it is.
    Done(Box<RawValue>),
    /// A game-level refusal with the module's positive code.
    Refused { code: i32, msg: String },
    /// `ret: 0` with the reply data stored under the request's idempotency key: the command
    /// ran before and was not run again.
    Replayed(Box<RawValue>),
}

/// `POST /login`: finds or creates the player, opens a session.
pub async fn login(state: &AppState, request: LoginRequest) -> Result<Login, ApiError> {
    let now = state.clock.now_millis();
    let name = request.name.unwrap_or_else(|| request.account.clone());
    let new_player = Player::new(
        session::new_player_id(),
        name,
        request.head_img.unwrap_or_default(),
    );
    let player = state
        .store
        .login(&request.account, new_player, now)
        .await
        .map_err(store_error)?;
    let token = session::new_token();
    let expires_at = now.saturating_add(state.config.session.ttl_ms());
    let token_hash = session::token_hash(&token);
    state
        .store
        .create_session(&token_hash, &player.player_id, expires_at)
        .await
        .map_err(store_error)?;
    state
        .sessions
        .insert(&token_hash, &player.player_id, expires_at, now);
    state.accounts.remember(&request.account, &player.player_id);
    Ok(Login {
        player_id: player.player_id,
        token,
    })
}

/// Who sent a request: the player, and the hash of the session token they sent.
#[derive(Debug)]
pub struct Caller {
    pub player_id: String,
    pub token_hash: String,
}

/// The player behind a request's token.
pub async fn authenticate(state: &AppState, token: Option<&str>) -> Result<Caller, ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::Unauthorized("no session: log in with POST /login, then send its token as `Authorization: Bearer <token>`".into())
    })?;
    let now = state.clock.now_millis();
    let token_hash = session::token_hash(token);
    if let Some(player_id) = state.sessions.get(&token_hash, now) {
        return Ok(Caller {
            player_id,
            token_hash,
        });
    }
    let session = state
        .store
        .session(&token_hash, now)
        .await
        .map_err(store_error)?
        .ok_or_else(session_ended)?;
    state
        .sessions
        .insert(&token_hash, &session.player_id, session.expires_at_ms, now);
    Ok(Caller {
        player_id: session.player_id,
        token_hash,
    })
}

/// `POST /logout`: ends the session of `token`.
pub async fn logout(state: &AppState, token: &str) -> Result<(), ApiError> {
    let token_hash = session::token_hash(token);
    state
        .store
        .end_session(&token_hash)
        .await
        .map_err(store_error)?;
    state.sessions.end(&token_hash, state.clock.now_millis());
    Ok(())
}

/// `POST /logic`: runs one command for the caller; `key`, the request's idempotency key.
pub async fn run_command(
    state: &AppState,
    caller: &Caller,
    request: LogicRequest,
    key: Option<&IdempotencyKey>,
) -> Result<CommandReply, ApiError> {
    let player_id = caller.player_id.as_str();
    let cmd = request.cmd;
    let account = state
        .accounts
        .of_player(&*state.store, player_id)
        .await
        .map_err(store_error)?
        .ok_or_else(session_ended)?;
    let keyed = key.map(|key| Keyed {
        key: key.as_str(),
        fingerprint: idempotency::fingerprint(cmd, &request.data),
    });
    let (version, migrator) = state
        .registry
        .route_with_migrator(cmd.prefix(), player_id)
        .ok_or_else(|| {
            ApiError::NoSuchCommand(format!("no module serves commands {}xx", cmd.prefix()))
        })?;
    if !version.serves(cmd) {
        return Err(no_such_command(&version, cmd));
    }
    // The players whose commands wait for this one: its own, and those it gives gold to.
    let mut held = vec![state.player_locks.lock(player_id).await];
    // A server store's turn is optimistic: another host may change the player between the
    // turn's read and its write, which then applies nothing; the turn runs again from its
    // read (the module's command is a function of the turn's state), then with the player
    // locked, so that it cannot lose the race again and again to a busy host.
    let mut attempt = 1;
    let mut locked = false;
    loop {
        match turn(
            state,
            (caller, &account),
            (&version, migrator.clone()),
            cmd,
            &request.data,
            (locked, &mut held),
            keyed.as_ref(),
        )
        .await
        {
            Ok(reply) => return Ok(reply),
            Err(TurnFailed::Api(e)) => return Err(e),
            Err(TurnFailed::NeedLocks(others)) => {
                // A command of a player this one gives to runs now. Waiting for it while
                // holding this player could wait in a cycle (it may give to this player):
                // let go of everything, take them all in id order, and run the turn again.
                if attempt == MAX_TURN_ATTEMPTS {
                    return Err(ApiError::unavailable(
                        "the players this command changes stayed busy, try again",
                        "the players a turn gives to changed at every attempt",
                    ));
                }
                attempt += 1;
                held.clear();
                let mut players = others;
                players.push(player_id.to_owned());
                held = state.player_locks.lock_all(&players).await;
            }
            Err(TurnFailed::Conflict) => {
                state.metrics.turn_conflict();
                if attempt == MAX_TURN_ATTEMPTS {
                    return Err(ApiError::unavailable(
                        "the player kept changing on other hosts during the command, try again",
                        StoreError::Conflict,
                    ));
                }
                attempt += 1;
                locked = true;
            }
        }
    }
}

/// How many times a command's turn is run while its player changes meanwhile. A locked turn
/// loses only to a session that ended (then its next read says so), so this is a safety net.
const MAX_TURN_ATTEMPTS: u32 = 4;

/// A keyed command's key and its request's fingerprint.
struct Keyed<'a> {
    key: &'a str,
    fingerprint: String,
}

/// Why a turn has no reply.
enum TurnFailed {
    /// The client's error.
    Api(ApiError),
    /// It wrote nothing, because the player changed after its read: run it again.
    Conflict,
    /// It wrote nothing: it gives gold to these players, and one of them is locked by a
    /// command of theirs. Run it again holding them all.
    NeedLocks(Vec<String>),
}

impl From<ApiError> for TurnFailed {
    fn from(e: ApiError) -> Self {
        TurnFailed::Api(e)
    }
}

/// One turn of a command, under the player's lock: read, decide, write. `locked`: with the
/// player locked in the store too (`Store::begin_locked_turn`). `keyed`: the command's
/// idempotency key, looked up in the read and stored with the write.
async fn turn<'s>(
    state: &'s AppState,
    (caller, account): (&Caller, &str),
    (version, migrator): (&Arc<ModuleVersion>, Option<Arc<ModuleVersion>>),
    cmd: Cmd,
    data: &Map<String, Value>,
    (locked, held): (bool, &mut Vec<PlayerGuard<'s>>),
    keyed: Option<&Keyed<'_>>,
) -> Result<CommandReply, TurnFailed> {
    let player_id = caller.player_id.as_str();
    let session = SessionCheck {
        token_hash: &caller.token_hash,
        now_ms: state.clock.now_millis(),
    };
    let module = version.meta.name.as_str();
    let options = TurnOptions {
        locked,
        key: keyed.map(|keyed| TurnKey {
            key: keyed.key,
            fingerprint: &keyed.fingerprint,
            expired_at_ms: idempotency::expired_at(session.now_ms),
        }),
    };
    let begun = state
        .store
        .open_turn(player_id, module, session, options)
        .await;
    let mut turn = match begun {
        Ok(turn) => turn,
        Err(StoreError::SessionEnded) => {
            state.sessions.end(&caller.token_hash, session.now_ms);
            return Err(session_ended().into());
        }
        // A locked read that lost a deadlock: nothing was read, run it again.
        Err(StoreError::Conflict) => return Err(TurnFailed::Conflict),
        Err(e) => return Err(store_error(e).into()),
    };
    if let (Some(stored), Some(keyed)) = (turn.stored.take(), keyed) {
        // Nothing is written: a locked turn's end only commits its empty transaction.
        let replay = replayed(version, stored, &keyed.fingerprint);
        turn.end(None, None, session.now_ms)
            .await
            .map_err(store_error)?;
        return Ok(replay?);
    }
    // Data a newer version wrote before a step back is downgraded first (and stored so when
    // the turn commits).
    let downgraded = match readable_data(state, version, cmd, migrator, &turn.module_data).await {
        Ok(downgraded) => downgraded,
        Err(e) => return Err(e.into()),
    };
    // The module decides; the turn then writes what it changed, or is dropped, writing
    // nothing.
    let decided = decide(
        state,
        version,
        cmd,
        data,
        (
            &turn.player,
            downgraded.as_ref().unwrap_or(&turn.module_data),
            account,
        ),
    );
    match decided.await {
        Ok(Decision::Commit {
            data,
            player,
            module_data,
            effects,
        }) => {
            // Accounts the pushes name are found before the write: one nobody has may refuse
            // the command, as its module asked.
            let resolved =
                push::effects::resolve(*effects, player_id, &state.accounts, &*state.store).await;
            let effects = match resolved {
                Ok(Resolved::Write(effects)) => effects,
                Ok(Resolved::Refuse { code, msg }) => {
                    return Ok(CommandReply::Refused { code, msg })
                }
                Err(ResolveError::Store(e)) => return Err(store_error(e).into()),
                Err(ResolveError::Module(why)) => return Err(failed(module, why).into()),
            };
            // The players it gives to are locked too, without waiting (`NeedLocks` otherwise).
            for other in effects.other_players() {
                if held.iter().any(|guard| guard.player_id() == other) {
                    continue;
                }
                match state.player_locks.try_lock(other) {
                    Some(guard) => held.push(guard),
                    None => {
                        let others = effects.other_players().map(str::to_owned).collect();
                        return Err(TurnFailed::NeedLocks(others));
                    }
                }
            }
            let now = state.clock.now_millis();
            let module_data = module_data.or(downgraded);
            let ended = turn.end_replying(
                player.as_ref(),
                module_data.as_ref(),
                &effects,
                data.get(),
                now,
            );
            match ended.await {
                Ok(()) => {
                    if !effects.pushes.is_empty() {
                        for push in &effects.pushes {
                            state.metrics.push_written(&push.kind);
                        }
                        state.pushes.committed();
                    }
                    Ok(CommandReply::Done(data))
                }
                Err(StoreError::Conflict) => Err(TurnFailed::Conflict),
                Err(e) => Err(store_error(e).into()),
            }
        }
        Ok(Decision::Refuse { code, msg }) => Ok(CommandReply::Refused { code, msg }),
        Err(e) => Err(e.into()),
    }
}

/// The answer to a keyed command whose key is stored: its first reply if it is the same
/// request, the client's error if it is another.
fn replayed(
    version: &ModuleVersion,
    stored: StoredReply,
    fingerprint: &str,
) -> Result<CommandReply, ApiError> {
    if stored.fingerprint != fingerprint {
        return Err(ApiError::BadRequest(idempotency::REUSED.into()));
    }
    RawValue::from_string(stored.reply)
        .map(CommandReply::Replayed)
        .map_err(|e| {
            let module = &version.meta.name;
            store_error(StoreError::Corrupt(format!(
                "a stored reply of module `{module}` is not JSON: {e}"
            )))
        })
}

/// What a command's turn comes to, once the module has answered and the host has checked it.
enum Decision {
    /// Commit what changed (`None`: unchanged) and the pushes and group changes asked for,
    /// then reply `data`.
    Commit {
        data: Box<RawValue>,
        player: Option<Player>,
        module_data: Option<ModuleData>,
        effects: Box<Effects>,
    },
    /// A game-level refusal: nothing is written.
    Refuse { code: i32, msg: String },
}

/// Calls the module on the turn's state and checks what it returned: what to commit, a
/// refusal, or the client's error. Reads and writes nothing in the store.
async fn decide(
    state: &AppState,
    version: &Arc<ModuleVersion>,
    cmd: Cmd,
    data: &Map<String, Value>,
    (player, module_data, account): (&Player, &ModuleData, &str),
) -> Result<Decision, ApiError> {
    let module = &version.meta.name;
    let outcome = call_module(state, version, cmd, data, (player, module_data, account)).await?;
    let outcome = within_reply_limit(module, outcome, state.config.plugins.max_reply_bytes)?;
    match outcome {
        CallOutcome::Done {
            data,
            player: new_player,
            module_data: new_data,
            effects,
        } => Ok(Decision::Commit {
            data: reply_data(module, data)?,
            player: new_player
                .map(|text| checked_player(module, &text, player))
                .transpose()?,
            module_data: new_data
                .map(|text| checked_module_data(module, &text))
                .transpose()?,
            effects: Box::new(
                effects
                    .map(|text| push::effects::parse(&text).map_err(|why| failed(module, why)))
                    .transpose()?
                    .unwrap_or_default(),
            ),
        }),
        CallOutcome::Refused { code, msg } if code > 0 => {
            let declared = version.meta.refusals.iter().any(|r| r.code == code);
            if !declared && version.stats.first_undeclared_refusal() {
                slog::warn!(state.log, "module refused with a code it does not declare (logged once per version): declare it in export_module!'s refusals, so that clients can know it";
                    "module" => module, "version" => &version.meta.version, "cmd" => cmd.as_str(), "code" => code);
            }
            Ok(Decision::Refuse { code, msg })
        }
        CallOutcome::Refused { code, msg } => Err(failed(
            module,
            format!("refused with code {code}, codes must be positive: {msg}"),
        )),
        CallOutcome::UnknownCommand => Err(no_such_command(version, cmd)),
        CallOutcome::Failed { msg } => Err(failed(module, msg)),
    }
}

/// The player's module data as `version` can read it: downgraded by the module's `migrator`
/// if a newer version wrote it ([`migrator::readable_by`]); `None` if it needs nothing.
async fn readable_data(
    state: &AppState,
    version: &ModuleVersion,
    cmd: Cmd,
    migrator: Option<Arc<ModuleVersion>>,
    data: &ModuleData,
) -> Result<Option<ModuleData>, ApiError> {
    let Some(migrator) = migrator else {
        return Ok(None);
    };
    let limits = call_limits(state, &migrator.meta.name);
    let executor = state.registry.executor();
    match migrator::readable_by(version, &migrator, executor, limits, data).await {
        Ok(downgraded) => Ok(downgraded),
        Err(DowngradeError::Call(e)) => Err(call_failed(state, &migrator, cmd, limits, e)),
        Err(step) => Err(failed(&version.meta.name, step.to_string())),
    }
}

fn call_limits(state: &AppState, module: &str) -> CallLimits {
    CallLimits {
        deadline: state.config.call_timeout(module),
        max_stuck: state.config.plugins.max_stuck_calls,
    }
}

/// Calls the module ([`ModuleVersion::run_command`]: its deadline, its cap of stuck calls, its
/// counts) and turns a call that has no outcome into the client's error.
async fn call_module(
    state: &AppState,
    version: &Arc<ModuleVersion>,
    cmd: Cmd,
    data: &Map<String, Value>,
    (player, module_data, account): (&Player, &ModuleData, &str),
) -> Result<CallOutcome, ApiError> {
    let limits = call_limits(state, &version.meta.name);
    let input = CallInput {
        data: serde_json::to_string(data).expect("a JSON object serializes"),
        player: serde_json::to_string(player).expect("a player record serializes"),
        module_data: Value::Object(module_data.clone()).to_string(),
        account: account.to_owned(),
    };
    let executor = state.registry.executor();
    version
        .run_command(executor, limits, cmd, input)
        .await
        .map_err(|e| call_failed(state, version, cmd, limits, e))
}

/// The client's error for a call of `version` that has no outcome (-6, -7), logged.
fn call_failed(
    state: &AppState,
    version: &ModuleVersion,
    cmd: Cmd,
    limits: CallLimits,
    error: CallError,
) -> ApiError {
    let module = &version.meta.name;
    match error {
        CallError::Closed(closed) => ApiError::unavailable("the host is shutting down", closed),
        e @ CallError::TooManyStuck { .. } => ApiError::unavailable(
            format!("module `{module}` is not answering: try again later"),
            format!(
                "version {}: {e} (plugins.max_stuck_calls)",
                version.meta.version
            ),
        ),
        CallError::Overdue { deadline, stuck } => {
            let timeout_ms = deadline.as_millis() as u64;
            slog::warn!(state.log, "module call past its deadline (one that started runs on)";
                "module" => module, "version" => &version.meta.version, "cmd" => %cmd,
                "timeout_ms" => timeout_ms, "stuck_calls" => stuck);
            if !version.stats.healthy(limits.max_stuck) {
                slog::error!(state.log, "module unhealthy: its commands are refused until its calls return";
                    "module" => module, "version" => &version.meta.version, "stuck_calls" => stuck);
            }
            ApiError::Timeout {
                module: module.clone(),
                timeout_ms,
            }
        }
    }
}

/// The outcome if every text in it is within `plugins.max_reply_bytes`: a module must not make
/// the host store, log or send an unbounded reply.
fn within_reply_limit(
    module: &str,
    outcome: CallOutcome,
    limit: usize,
) -> Result<CallOutcome, ApiError> {
    let check = |what: &str, text: &str| match text.len() {
        len if len > limit => Err(failed(
            module,
            format!("returned a {what} of {len} bytes, over plugins.max_reply_bytes ({limit})"),
        )),
        _ => Ok(()),
    };
    match &outcome {
        CallOutcome::Done {
            data,
            player,
            module_data,
            effects,
        } => {
            check("reply data", data)?;
            effects
                .as_deref()
                .map_or(Ok(()), |e| check("list of pushes and group changes", e))?;
            player
                .as_deref()
                .map_or(Ok(()), |p| check("player record", p))?;
            module_data
                .as_deref()
                .map_or(Ok(()), |d| check("module data", d))?;
        }
        CallOutcome::Refused { msg, .. } => check("refusal message", msg)?,
        CallOutcome::Failed { msg } => check("failure message", msg)?,
        CallOutcome::UnknownCommand => {}
    }
    Ok(outcome)
}

/// The reply data if it is a JSON object. It is checked, not parsed into a map: the client
/// gets the module's text as it is, which saves a parse and a re-encoding per command.
fn reply_data(module: &str, text: String) -> Result<Box<RawValue>, ApiError> {
    match RawValue::from_string(text) {
        Ok(data) if data.get().trim_start().starts_with('{') => Ok(data),
        _ => Err(failed(module, "the reply data is not a JSON object".into())),
    }
}

/// The record a module returned, if the host may store it.
fn checked_player(module: &str, text: &str, before: &Player) -> Result<Player, ApiError> {
    let player: Player = serde_json::from_str(text)
        .map_err(|e| failed(module, format!("returned an unreadable player record: {e}")))?;
    if player.player_id != before.player_id {
        return Err(failed(module, "changed the player_id".into()));
    }
    match player.invalid_reason() {
        Some(reason) => Err(failed(
            module,
            format!("returned an invalid player record: {reason}"),
        )),
        None => Ok(player),
    }
}

fn checked_module_data(module: &str, text: &str) -> Result<ModuleData, ApiError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(data)) => Ok(data),
        _ => Err(failed(
            module,
            "returned module data that is not a JSON object".into(),
        )),
    }
}

fn no_such_command(version: &ModuleVersion, cmd: Cmd) -> ApiError {
    ApiError::NoSuchCommand(format!(
        "module `{}` has no command {cmd}",
        version.meta.name
    ))
}

fn failed(module: &str, detail: String) -> ApiError {
    ApiError::ModuleFailed {
        module: module.to_owned(),
        detail,
    }
}

fn session_ended() -> ApiError {
    ApiError::Unauthorized("the session is unknown or expired: log in again".into())
}

/// Storage errors as the client sees them: the detail is logged, never sent.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NoSuchPlayer(_) => {
            ApiError::Unauthorized("the session's player no longer exists: log in again".into())
        }
        StoreError::SessionEnded => session_ended(),
        other => ApiError::unavailable("the database is unavailable, try again shortly", other),
    }
}
