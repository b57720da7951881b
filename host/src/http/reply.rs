//! A reply on its way out, and the one place it becomes an HTTP response: JSON with its
//! status and headers. Errors are rendered by [`ApiError::render`], with the headers they need.

use crate::cors;
use crate::error::ApiError;
use crate::static_files::FileBody;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use hyper::{Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::Value;

/// A client listener reply: JSON, or a file of `paths.static_dir`.
pub type Body = Either<Full<Bytes>, FileBody>;

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
    pub fn done(reply_cmd: &str, data: &RawValue) -> Reply {
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

    /// 101: the connection becomes a WebSocket (`accept`, the `Sec-WebSocket-Accept` of the
    /// client's key). No body, no `ret`.
    pub fn switching_protocols(accept: String) -> Reply {
        Reply {
            status: 101,
            ret: 0,
            body: Bytes::new(),
            headers: vec![
                (UPGRADE, "websocket".into()),
                (CONNECTION, "Upgrade".into()),
                (SEC_WEBSOCKET_ACCEPT, accept),
            ],
        }
    }

    /// This reply marked as a stored one replayed, in its body (`"replayed": true`): a socket
    /// has no headers for `Idempotent-Replayed`.
    pub fn replayed(mut self) -> Reply {
        if let Some(rest) = self.body.strip_prefix(b"{") {
            let mut body = Vec::with_capacity(self.body.len() + 16);
            body.extend_from_slice(b"{\"replayed\":true,");
            body.extend_from_slice(rest);
            self.body = Bytes::from(body);
        }
        self
    }

    /// Whether this is the switch to a WebSocket, which has no JSON body.
    pub fn is_switch(&self) -> bool {
        self.status == 101
    }

    /// The JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
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

pub(crate) fn render(reply: Reply) -> Response<Full<Bytes>> {
    let switch = reply.is_switch();
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if !switch {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}
