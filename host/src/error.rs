//! The host's error codes (docs/PROTOCOL.md, "Host codes") and the one place that turns an error
//! into an HTTP status and a JSON body.
//!
//! The client sees only the `msg`; the internal detail (a database error, a module's panic
//! message and location) goes to the log. No reply leaks a path, a stack trace or another
//! player's data.

use serde_json::{json, Value};

/// A request that could not be served, by host code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// -1: no module serves the prefix, or the module has no such command.
    #[error("{0}")]
    NoSuchCommand(String),
    /// -1 with 404: the path is not part of the protocol.
    #[error("no such endpoint `{0}`: the client endpoints are POST /login, POST /logic, POST /logout, GET /health and GET /ws (a WebSocket)")]
    NoSuchEndpoint(String),
    /// -1 with 404: the thing asked for (a module, in the admin API) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// -2 with 405: a known path with the wrong method.
    #[error("`{path}` takes {allow} only")]
    MethodNotAllowed { path: String, allow: &'static str },
    /// -2: the body is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// -2: the body did not arrive in time (a slow client); the connection is closed.
    #[error("the request body did not arrive within {secs} s")]
    SlowBody { secs: u64 },
    /// -2 with 403: a browser's preflight from an origin not in `server.cors_origins`.
    #[error("the origin `{0}` may not call this host: list it in server.cors_origins")]
    OriginNotAllowed(String),
    /// -3: no session, unknown or expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// -4: the body is over the limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// -5: the module failed. `detail` is logged, never sent.
    #[error("module `{module}` failed while running this command")]
    ModuleFailed { module: String, detail: String },
    /// -6: a dependency is unavailable. `detail` is logged, never sent.
    #[error("{msg}")]
    Unavailable { msg: String, detail: String },
    /// -7: the module did not answer in time.
    #[error("module `{module}` did not answer within {timeout_ms} ms")]
    Timeout { module: String, timeout_ms: u64 },
    /// -6 from `/health`: the host should not get players now. The body also carries `status`
    /// and, when a dependency is down, `down` (its names). `detail` is logged, never sent.
    #[error("{msg}")]
    Unhealthy {
        status: &'static str,
        down: &'static [&'static str],
        msg: &'static str,
        detail: Option<String>,
    },
}

impl ApiError {
    /// The `ret` code of PROTOCOL.md.
    pub fn ret(&self) -> i32 {
        match self {
            ApiError::NoSuchCommand(_) | ApiError::NoSuchEndpoint(_) | ApiError::NotFound(_) => -1,
            ApiError::BadRequest(_)
            | ApiError::SlowBody { .. }
            | ApiError::OriginNotAllowed(_)
            | ApiError::MethodNotAllowed { .. } => -2,
            ApiError::Unauthorized(_) => -3,
            ApiError::TooLarge { .. } => -4,
            ApiError::ModuleFailed { .. } => -5,
            ApiError::Unavailable { .. } | ApiError::Unhealthy { .. } => -6,
            ApiError::Timeout { .. } => -7,
        }
    }

    /// The HTTP status of PROTOCOL.md.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NoSuchCommand(_) => 200,
            ApiError::NoSuchEndpoint(_) | ApiError::NotFound(_) => 404,
            ApiError::BadRequest(_) | ApiError::SlowBody { .. } => 400,
            ApiError::OriginNotAllowed(_) => 403,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Unauthorized(_) => 401,
            ApiError::TooLarge { .. } => 413,
            ApiError::ModuleFailed { .. } => 500,
            ApiError::Unavailable { .. } | ApiError::Unhealthy { .. } => 503,
            ApiError::Timeout { .. } => 504,
        }
    }

    /// What is logged beside the client's `msg`, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::ModuleFailed { detail, .. } | ApiError::Unavailable { detail, .. } => {
                Some(detail)
            }
            ApiError::Unhealthy { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    pub fn unavailable(msg: impl Into<String>, detail: impl ToString) -> Self {
        ApiError::Unavailable {
            msg: msg.into(),
            detail: detail.to_string(),
        }
    }

    /// The reply: HTTP status and JSON body, with the reply `cmd` when the request named one.
    /// Logs the internal detail. This is the only function that renders an error.
    pub fn render(&self, reply_cmd: Option<&str>, log: &slog::Logger) -> (u16, Value) {
        match self.detail() {
            Some(detail) if self.ret() == -5 => {
                slog::error!(log, "request failed"; "ret" => self.ret(), "msg" => %self, "detail" => detail)
            }
            Some(detail) => {
                slog::warn!(log, "request failed"; "ret" => self.ret(), "msg" => %self, "detail" => detail)
            }
            None => slog::debug!(log, "request refused"; "ret" => self.ret(), "msg" => %self),
        }
        let mut body = json!({ "ret": self.ret(), "msg": self.to_string() });
        if let Some(cmd) = reply_cmd {
            body["cmd"] = json!(cmd);
        }
        if let ApiError::Unhealthy { status, down, .. } = self {
            body["status"] = json!(status);
            if !down.is_empty() {
                body["down"] = json!(down);
            }
        }
        (self.status(), body)
    }
}
