//! The client endpoints of docs/PROTOCOL.md v1 over HTTP: routing and the endpoints
//! themselves.
//!
//! This layer owns the wire: it reads and bounds bodies ([`body`]), finds the session token,
//! and renders every reply as JSON ([`reply`]); it writes one access line per request
//! ([`access`]). What a request means is [`crate::game`]'s business.

mod access;
mod body;
mod health;
mod preflight;
mod reply;

pub(crate) use access::{finish, Access};
pub(crate) use body::{read_body, read_body_within};
pub use reply::Body;
pub(crate) use reply::{error_reply, render, Reply};

use crate::cors;
use crate::error::ApiError;
use crate::game::{self, CommandReply};
use crate::idempotency::{self, IdempotencyKey};
use crate::protocol::{LogicRequest, LoginRequest};
use crate::session;
use crate::state::AppState;
use crate::static_files::FileBody;
use crate::websocket;
use body::check_length;
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::header::{HeaderName, CONNECTION, SET_COOKIE};
use hyper::{Method, Request, Response};
use serde_json::json;
use std::convert::Infallible;
use std::time::Instant;

/// The API's paths; any other `GET` may be a static file.
const API_PATHS: [&str; 5] = ["/health", "/login", "/logic", "/logout", websocket::PATH];

/// Serves one request. Never fails: every error becomes a protocol reply.
pub async fn handle(
    state: AppState,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let _in_flight = state.metrics.request_started();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let cross_origin = cors::headers_for(&state.config.server.cors_origins, request.headers());
    let mut access = Access::default();
    if let Some(file) = static_file(&state, &request).await {
        let status = file.status().as_u16();
        finish(&state, &method, &path, status, None, &access, started);
        return Ok(file.map(Either::Right));
    }
    let mut reply = match route(&state, request, &mut access).await {
        Ok(reply) => reply,
        Err(error) => error_reply(&error, access.reply_cmd.as_deref(), &state.log),
    };
    if let Some(headers) = cross_origin.filter(|_| method != Method::OPTIONS) {
        reply = reply.with_headers(headers);
    }
    // A switch to a WebSocket has no `ret`: the socket's own messages carry theirs.
    let ret = (!reply.is_switch()).then_some(reply.ret);
    finish(&state, &method, &path, reply.status, ret, &access, started);
    let reply = if state.is_shutting_down() {
        // The client's next request goes to a new connection: the successor's, or another host.
        reply.with_header(CONNECTION, "close".into())
    } else {
        reply
    };
    Ok(render(reply).map(Either::Left))
}

/// The file of `paths.static_dir` that a `GET` or `HEAD` outside the API asks for, if any.
async fn static_file(state: &AppState, request: &Request<Incoming>) -> Option<Response<FileBody>> {
    let files = state.static_files.as_ref()?;
    let method = request.method();
    let api = API_PATHS.contains(&request.uri().path());
    if api || !(method == Method::GET || method == Method::HEAD) {
        return None;
    }
    files.serve(request).await
}

async fn route(
    state: &AppState,
    request: Request<Incoming>,
    access: &mut Access,
) -> Result<Reply, ApiError> {
    let path = request.uri().path().to_owned();
    // While the host shuts down, requests on its open connections are still served, not
    // refused: behind nginx they come on its kept-alive connections, and nginx never passes a
    // POST it has sent to another host, so a refusal would reach the player. The database and
    // modules are here until the end; each reply closes its connection (`handle`).
    match (request.method(), path.as_str()) {
        (&Method::GET, "/health") => health::health(state).await,
        (&Method::POST, "/login") => login(state, request).await,
        (&Method::POST, "/logic") => logic(state, request, access).await,
        (&Method::POST, "/logout") => logout(state, request).await,
        (&Method::GET, websocket::PATH) => websocket::open(state, request),
        (&Method::OPTIONS, "/health") => preflight::preflight(state, &request, path, "GET"),
        (&Method::OPTIONS, "/login" | "/logic" | "/logout") => {
            preflight::preflight(state, &request, path, "POST")
        }
        (_, "/health" | websocket::PATH) => Err(ApiError::MethodNotAllowed { path, allow: "GET" }),
        (_, "/login" | "/logic" | "/logout") => Err(ApiError::MethodNotAllowed {
            path,
            allow: "POST",
        }),
        _ => Err(ApiError::NoSuchEndpoint(path)),
    }
}

async fn login(state: &AppState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let body = read_body(request, &state.config.server).await?;
    let login = game::login(state, LoginRequest::parse(&body)?).await?;
    let cookie = session::set_cookie(&login.token);
    Ok(
        Reply::ok(json!({ "ret": 0, "player_id": login.player_id, "token": login.token }))
            .with_header(SET_COOKIE, cookie),
    )
}

async fn logic(
    state: &AppState,
    request: Request<Incoming>,
    access: &mut Access,
) -> Result<Reply, ApiError> {
    check_length(&request, state.config.server.body_limit)?;
    let token = session::token_from(request.headers());
    let caller = game::authenticate(state, token.as_deref()).await?;
    access.player = Some(caller.player_id.clone());
    let key = IdempotencyKey::from_headers(request.headers())?;
    let body = read_body(request, &state.config.server).await?;
    let logic = LogicRequest::parse(&body)?;
    let reply_cmd = logic.cmd.reply();
    access.cmd = Some(logic.cmd.to_string());
    access.reply_cmd = Some(reply_cmd.clone());
    let outcome = game::run_command(state, &caller, logic, key.as_ref()).await?;
    Ok(command_reply(&reply_cmd, outcome))
}

/// A command's reply, over HTTP or a socket ([`crate::websocket`]).
pub(crate) fn command_reply(reply_cmd: &str, outcome: CommandReply) -> Reply {
    match outcome {
        CommandReply::Done(data) => Reply::done(reply_cmd, &data),
        CommandReply::Replayed(data) => Reply::done(reply_cmd, &data).with_header(
            HeaderName::from_static(idempotency::REPLAYED_HEADER),
            "true".into(),
        ),
        CommandReply::Refused { code, msg } => {
            Reply::ok(json!({ "ret": code, "cmd": reply_cmd, "msg": msg }))
        }
    }
}

async fn logout(state: &AppState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let token = session::token_from(request.headers());
    game::authenticate(state, token.as_deref()).await?;
    if let Some(token) = token {
        game::logout(state, &token).await?;
    }
    Ok(Reply::ok(json!({ "ret": 0 })).with_header(SET_COOKIE, session::clear_cookie()))
}
