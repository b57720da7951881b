//! A browser's CORS preflight (`OPTIONS` on an API path): allowed for the origins of
//! `server.cors_origins` ([`crate::cors`] says which and with what headers), 403 otherwise.

use super::Reply;
use crate::cors;
use crate::error::ApiError;
use crate::state::AppState;
use hyper::body::Incoming;
use hyper::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use hyper::Request;
use serde_json::json;

/// A browser's preflight for a cross-origin call of `path`, which takes `method`: allowed for
/// the origins of `server.cors_origins`, refused (403) for any other. An `OPTIONS` that is not
/// a preflight is a method the path does not take.
pub(crate) fn preflight(
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
