//! Accepting connections on one listener and serving them over HTTP/1 until told to stop.
//! The client API and the admin API each run one.

use crate::state::AppState;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` with `handler` until `stop` resolves; then stops accepting and returns
/// the handle through which the open connections are asked to finish.
pub async fn accept_until<H, F, B>(
    listener: TcpListener,
    state: AppState,
    handler: H,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown
where
    H: Fn(AppState, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => return graceful,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let state = state.clone();
                let service = service_fn(move |request| handler(state.clone(), request));
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that hangs up mid-request is not the host's error.
                    let _ = connection.await;
                });
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                slog::warn!(state.log, "accept failed"; "error" => %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
