//! Accepting connections on one listener and serving them over HTTP/1 until told to stop.
//! The client API and the admin API each run one.
//!
//! Slow clients are bounded here: a connection that does not send its request headers within
//! `server.header_read_timeout_secs` (which hyper also applies to the wait for the next
//! request on a kept-alive connection) is closed, so is one whose client stops reading its
//! replies for `server.write_timeout_secs` ([`write_timeout`]), and at most
//! `server.max_connections` are open at once; past it a new connection is closed at once. The body's timeout is applied
//! where bodies are read ([`crate::http::read_body`]).
//!
//! Cancellation: each request runs to its end ([`to_the_end`], counted in
//! [`AppState::requests`]). A client that hangs up makes hyper drop the connection's future
//! at whatever await it is (reading the request, running it, writing its reply); a request
//! cut off that way goes on in a task of its own to its end, its access line and metrics
//! included. ARCHITECTURE.md,
//! "Cancellation", lists every await of the request path and why it is safe.

mod connections;
mod to_the_end;
mod write_timeout;

pub use connections::Connections;

use crate::state::AppState;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use to_the_end::ToTheEnd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use write_timeout::WriteTimeout;

/// The address a request came from, put in each request's extensions: the admin API logs it
/// as the caller of every change.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// At most one warning per this long about connections closed at the cap.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Serves `listener` with `handler` until `stop` resolves; then stops accepting, closes the
/// listener and returns the handle through which the open connections are asked to finish.
///
/// Connections the kernel had already accepted into the listener's queue when `stop` resolved
/// are taken and served too: their clients may have sent a request on them, and closing the
/// listener would reset them under it.
pub async fn accept_until<H, F, B>(
    listener: TcpListener,
    state: AppState,
    handler: H,
    stop: impl Future<Output = ()>,
) -> Connections
where
    H: Fn(AppState, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connections = Connections::default();
    let header_read_timeout = Duration::from_secs(state.config.server.header_read_timeout_secs);
    let write_timeout = Duration::from_secs(state.config.server.write_timeout_secs);
    let open = Arc::new(Semaphore::new(state.config.server.max_connections));
    let mut last_cap_warning: Option<Instant> = None;
    let mut serve = |stream: TcpStream, peer: SocketAddr| {
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Dropping the stream closes it: the client sees the connection end at once and
            // may retry (a proxy tries another host); nothing was read from it.
            state.metrics.connection_refused();
            if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
                last_cap_warning = Some(Instant::now());
                slog::warn!(state.log, "connection closed at the cap (server.max_connections)";
                    "max_connections" => state.config.server.max_connections);
            }
            return;
        };
        let state = state.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            // The request runs to its end: hyper drops the connection's future, and with it
            // this one, when the client hangs up; the rest of the request then runs in a task
            // of its own, so its awaits (its transaction, its player's lock, the write of its
            // turn) are never cut off midway.
            ToTheEnd::new(handler(state.clone(), request), &state.requests)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(
                TokioIo::new(WriteTimeout::new(stream, write_timeout)),
                service,
            )
            // `GET /ws` switches the connection to a WebSocket ([`crate::websocket`]); the
            // connection's future then ends and the socket's task owns the stream.
            .with_upgrades();
        connections.serve(connection, move || drop(permit));
    };
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        match accepted {
            Ok((stream, peer)) => serve(stream, peer),
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                slog::warn!(state.log, "accept failed"; "error" => %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    for (stream, peer) in queued_connections(listener, &state.log) {
        serve(stream, peer);
    }
    connections
}

/// Takes every connection waiting in `listener`'s queue, then closes it. (tokio's `accept`
/// would wait for the reactor to report the listener readable; the socket itself says at once
/// whether a connection is queued.)
fn queued_connections(listener: TcpListener, log: &slog::Logger) -> Vec<(TcpStream, SocketAddr)> {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => {
            slog::warn!(log, "cannot take the queued connections"; "error" => %e);
            return Vec::new();
        }
    };
    // `into_std` leaves the listener non-blocking, so `accept` fails with `WouldBlock` once the
    // queue is empty; the taking also ends at any other error (the rest of the queue is then
    // reset). An accepted socket does not inherit non-blocking mode, and tokio needs it.
    std::iter::from_fn(|| listener.accept().ok())
        .filter_map(|(stream, peer)| {
            stream.set_nonblocking(true).ok()?;
            Some((TcpStream::from_std(stream).ok()?, peer))
        })
        .collect()
}
