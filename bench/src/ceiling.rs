//! The ceiling: the fastest server this machine runs for our protocol, to compare against.
//!
//! A bare hyper HTTP/1 server, set up like the host's listener (same builder, same header
//! timeout, `TCP_NODELAY`), that reads `POST /logic`, parses the same JSON envelope, checks
//! that a token is present, and replies a fixed player record as `1203` would: no modules, no
//! storage, no sessions, no logging. Runs in a process of its own (`game-bench ceiling`), as
//! the host does, so both pay the same scheduling and loopback costs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// The request envelope of PROTOCOL.md, as the host reads it.
#[derive(Deserialize)]
struct LogicRequest {
    cmd: String,
    // Parsed as the host parses it (the cost is the point); the fixed reply does not use it.
    #[allow(dead_code)]
    #[serde(default)]
    data: Map<String, Value>,
}

/// Serves until the process is killed; prints `listening on <addr>` once bound.
pub async fn serve() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    let record = json!({
        "player_id": "0123456789abcdef0123456789abcdef",
        "name": "bench-0", "head_img": "", "gold": 1000, "diamond": 0, "items": {}
    });
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let record = record.clone();
        let service = service_fn(move |request| reply(request, record.clone()));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn reply(
    request: Request<Incoming>,
    record: Value,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let has_token = request.headers().contains_key(AUTHORIZATION);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, json!({"ret": -2}))),
    };
    let parsed: Result<LogicRequest, _> = serde_json::from_slice(&body);
    let body = match parsed {
        Ok(request) if has_token => {
            let cmd = request.cmd.parse::<u32>().unwrap_or(0) + 1;
            json!({"ret": 0, "cmd": format!("{cmd:04}"), "data": record})
        }
        Ok(_) => return Ok(respond(StatusCode::UNAUTHORIZED, json!({"ret": -3}))),
        Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, json!({"ret": -2}))),
    };
    Ok(respond(StatusCode::OK, body))
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
