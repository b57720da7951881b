//! `GET /health`: whether a load balancer should send players here.

use super::Reply;
use crate::error::ApiError;
use crate::state::AppState;
use serde_json::json;

/// 200 while the host serves; 503 while it shuts down, or while a dependency (the database)
/// does not answer, naming it, so that a load balancer sends players elsewhere.
pub(crate) async fn health(state: &AppState) -> Result<Reply, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::Unhealthy {
            status: "shutting_down",
            down: &[],
            msg: "the host is shutting down",
            detail: None,
        });
    }
    match state.store.check().await {
        Ok(()) => Ok(Reply::ok(json!({ "ret": 0, "status": "ok" }))),
        Err(e) => Err(ApiError::Unhealthy {
            status: "unavailable",
            down: &["database"],
            msg: "the database is unavailable; the host retries by itself",
            detail: Some(format!("the database does not answer: {e}")),
        }),
    }
}
