//! The client endpoints of PROTOCOL.md v1 over HTTP: routing, body limits, replies, and one
//! access line per request.
//!
//! This layer owns the wire: it reads and bounds bodies, finds the session token, and renders
//! every reply as JSON. What a request means is [`crate::game`]'s business.

use crate::config::ServerConfig;
use crate::cors;
use crate::error::ApiError;
use crate::game::{self, CommandReply};
use crate::protocol::{LogicRequest, LoginRequest};
use crate::session;
use crate::state::AppState;
use crate::static_files::FileBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
    ORIGIN, SET_COOKIE,
};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// A reply on its way out: status, the body's `ret` (for the access line and the metrics),
/// the JSON body, extra headers.
pub(crate) struct Reply {
    pub status: u16,
    pub ret: i64,
    body: Bytes,
    headers: Vec<(hyper::header::HeaderName, String)>,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::json(200, &body)
    }

    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            ret: body.get("ret").and_then(Value::as_i64).unwrap_or_default(),
            body: Bytes::from(body.to_string()),
            headers: Vec::new(),
        }
    }

    /// A command's success: `{"ret": 0, "cmd": ..., "data": ...}` with the module's data as it
    /// came.
    fn done(reply_cmd: &str, data: &RawValue) -> Reply {
        #[derive(serde::Serialize)]
        struct Done<'a> {
            ret: i64,
            cmd: &'a str,
            data: &'a RawValue,
        }
        let body = serde_json::to_vec(&Done {
            ret: 0,
            cmd: reply_cmd,
            data,
        })
        .expect("strings and checked JSON serialize");
        Reply {
            status: 200,
            ret: 0,
            body: Bytes::from(body),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: hyper::header::HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn with_headers(mut self, headers: cors::Headers) -> Reply {
        self.headers.extend(headers);
        self
    }
}

/// A client listener reply: JSON, or a file of `paths.static_dir`.
pub type Body = Either<Full<Bytes>, FileBody>;

/// The API's paths; any other `GET` may be a static file.
const API_PATHS: [&str; 4] = ["/health", "/login", "/logic", "/logout"];

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
    finish(
        &state,
        &method,
        &path,
        reply.status,
        Some(reply.ret),
        &access,
        started,
    );
    let reply = if state.is_shutting_down() {
        // The client's next request goes to a new connection: the successor's, or another host.
        reply.with_header(CONNECTION, "close".into())
    } else {
        reply
    };
    Ok(render(reply).map(Either::Left))
}

/// Writes a request's access line and counts it in the metrics. `ret` is `None` for a file,
/// which has none.
fn finish(
    state: &AppState,
    method: &Method,
    path: &str,
    status: u16,
    ret: Option<i64>,
    access: &Access,
    started: Instant,
) {
    let elapsed = started.elapsed();
    slog::info!(state.log, "request";
        "method" => %method, "path" => path, "status" => status, "ret" => %Ret(ret),
        "cmd" => access.cmd.as_deref().unwrap_or("-"), "player" => access.player.as_deref().unwrap_or("-"),
        "ms" => %Millis(elapsed));
    // A command no module has (-1) is not a label of its own: anyone can send 10,000 of them.
    let known_cmd = access.cmd.as_deref().filter(|_| ret != Some(-1));
    state
        .metrics
        .request_finished(path, known_cmd, ret.unwrap_or(0), elapsed.as_secs_f64());
}

/// A reply's `ret` as the access line writes it: `-` when there is none.
struct Ret(Option<i64>);

impl std::fmt::Display for Ret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ret) => write!(f, "{ret}"),
            None => f.write_str("-"),
        }
    }
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

/// A duration as the access line writes it: milliseconds with three decimals.
struct Millis(std::time::Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = self.0.as_micros();
        write!(f, "{}.{:03}", micros / 1000, micros % 1000)
    }
}

/// The reply for an error (rendered by [`ApiError::render`]), with the headers it needs.
pub(crate) fn error_reply(error: &ApiError, reply_cmd: Option<&str>, log: &slog::Logger) -> Reply {
    let (status, body) = error.render(reply_cmd, log);
    let reply = Reply::json(status, &body);
    match error {
        // The rest of the body is never read, so the connection cannot be reused.
        ApiError::TooLarge { .. } | ApiError::SlowBody { .. } => {
            reply.with_header(CONNECTION, "close".into())
        }
        ApiError::MethodNotAllowed { allow, .. } => reply.with_header(ALLOW, (*allow).to_owned()),
        _ => reply,
    }
}

/// What the access line reports beside method, path and status.
#[derive(Default)]
struct Access {
    cmd: Option<String>,
    reply_cmd: Option<String>,
    player: Option<String>,
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
        (&Method::GET, "/health") => Ok(health(state).await),
        (&Method::POST, "/login") => login(state, request).await,
        (&Method::POST, "/logic") => logic(state, request, access).await,
        (&Method::POST, "/logout") => logout(state, request).await,
        (&Method::OPTIONS, "/health") => preflight(state, &request, path, "GET"),
        (&Method::OPTIONS, "/login" | "/logic" | "/logout") => {
            preflight(state, &request, path, "POST")
        }
        (_, "/health") => Err(ApiError::MethodNotAllowed { path, allow: "GET" }),
        (_, "/login" | "/logic" | "/logout") => Err(ApiError::MethodNotAllowed {
            path,
            allow: "POST",
        }),
        _ => Err(ApiError::NoSuchEndpoint(path)),
    }
}

/// A browser's preflight for a cross-origin call of `path`, which takes `method`: allowed for
/// the origins of `server.cors_origins`, refused (403) for any other. An `OPTIONS` that is not
/// a preflight is a method the path does not take.
fn preflight(
    state: &AppState,
    request: &Request<Incoming>,
    path: String,
    method: &'static str,
) -> Result<Reply, ApiError> {
    let headers = request.headers();
    let origin = headers.get(ORIGIN).and_then(|o| o.to_str().ok());
    let (Some(origin), true) = (origin, headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)) else {
        return Err(ApiError::MethodNotAllowed {
            path,
            allow: method,
        });
    };
    match cors::allowed_origin(&state.config.server.cors_origins, headers) {
        Some(allowed) => {
            Ok(Reply::ok(json!({ "ret": 0 }))
                .with_headers(cors::preflight_headers(allowed, method)))
        }
        None => Err(ApiError::OriginNotAllowed(origin.to_owned())),
    }
}

/// 200 while the host serves; 503 while it shuts down, or while a dependency (the database)
/// does not answer, naming it, so that a load balancer sends players elsewhere.
async fn health(state: &AppState) -> Reply {
    if state.is_shutting_down() {
        return Reply::json(
            503,
            &json!({ "ret": -6, "status": "shutting_down", "msg": "the host is shutting down" }),
        );
    }
    match state.store.check().await {
        Ok(()) => Reply::ok(json!({ "ret": 0, "status": "ok" })),
        Err(e) => {
            slog::warn!(state.log, "health: the database does not answer"; "error" => %e);
            Reply::json(
                503,
                &json!({
                    "ret": -6,
                    "status": "unavailable",
                    "down": ["database"],
                    "msg": "the database is unavailable; the host retries by itself",
                }),
            )
        }
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
    let body = read_body(request, &state.config.server).await?;
    let logic = LogicRequest::parse(&body)?;
    let reply_cmd = logic.cmd.reply();
    access.cmd = Some(logic.cmd.to_string());
    access.reply_cmd = Some(reply_cmd.clone());
    Ok(match game::run_command(state, &caller, logic).await? {
        CommandReply::Done(data) => Reply::done(&reply_cmd, &data),
        CommandReply::Refused { code, msg } => {
            Reply::ok(json!({ "ret": code, "cmd": reply_cmd, "msg": msg }))
        }
    })
}

async fn logout(state: &AppState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let token = session::token_from(request.headers());
    game::authenticate(state, token.as_deref()).await?;
    if let Some(token) = token {
        game::logout(state, &token).await?;
    }
    Ok(Reply::ok(json!({ "ret": 0 })).with_header(SET_COOKIE, session::clear_cookie()))
}

/// Refuses a body whose declared length is over the limit, before reading any of it.
fn check_length(request: &Request<Incoming>, limit: usize) -> Result<(), ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(ApiError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Reads the whole body, stopping at `server.body_limit` (chunked bodies declare no length)
/// and at `server.body_read_timeout_secs`.
pub(crate) async fn read_body(
    request: Request<Incoming>,
    server: &ServerConfig,
) -> Result<Bytes, ApiError> {
    let limit = server.body_limit;
    check_length(&request, limit)?;
    let timeout = Duration::from_secs(server.body_read_timeout_secs);
    let collected =
        tokio::time::timeout(timeout, Limited::new(request.into_body(), limit).collect())
            .await
            .map_err(|_| ApiError::SlowBody {
                secs: server.body_read_timeout_secs,
            })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::TooLarge { limit })
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

pub(crate) fn render(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}
