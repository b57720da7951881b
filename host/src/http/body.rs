//! Reading a request's body: bounded by `server.body_limit` (a declared length over it is
//! refused before a byte is read) and by `server.body_read_timeout_secs`.

use crate::config::ServerConfig;
use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;
use std::time::Duration;

/// Refuses a body whose declared length is over the limit, before reading any of it.
pub(crate) fn check_length(request: &Request<Incoming>, limit: usize) -> Result<(), ApiError> {
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
    read_body_within(request, server.body_limit, server).await
}

/// [`read_body`] under another limit than `server.body_limit` (the admin API's publish takes
/// a whole library).
pub(crate) async fn read_body_within(
    request: Request<Incoming>,
    limit: usize,
    server: &ServerConfig,
) -> Result<Bytes, ApiError> {
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
