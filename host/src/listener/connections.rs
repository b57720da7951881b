//! The connections one listener accepted, which shutdown asks to finish and waits for.
//!
//! hyper-util's `GracefulShutdown` does this for plain HTTP/1 connections, but not for one that
//! may switch to a WebSocket (`UpgradeableConnection`): so each connection runs in a tracked
//! task that, when asked, tells hyper to finish the request in hand and close. A connection
//! that switched to a WebSocket is no longer here: its socket's task belongs to
//! [`crate::websocket::WebSockets`].

use std::future::Future;
use std::pin::{pin, Pin};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A connection hyper can be asked to finish.
pub(super) trait Finish: Future {
    fn finish(self: Pin<&mut Self>);
}

impl<I, S, B> Finish for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn finish(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The open connections of one listener.
#[derive(Default)]
pub struct Connections {
    finishing: CancellationToken,
    open: TaskTracker,
}

impl Connections {
    /// Serves `connection` in a task of its own; `done` runs when it ends.
    pub(super) fn serve<C>(&self, connection: C, done: impl FnOnce() + Send + 'static)
    where
        C: Finish + Send + 'static,
        C::Output: Send,
    {
        let finishing = self.finishing.clone();
        self.open.spawn(async move {
            let mut connection = pin!(connection);
            // A client that hangs up mid-request is not the host's error: the result is not
            // looked at.
            tokio::select! {
                _ = connection.as_mut() => {}
                () = finishing.cancelled() => {
                    connection.as_mut().finish();
                    let _ = connection.await;
                }
            }
            done();
        });
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.open.len()
    }

    /// Asks every connection to finish its request in hand and close, and waits until they
    /// have.
    pub async fn shutdown(self) {
        self.finishing.cancel();
        self.open.close();
        self.open.wait().await;
    }
}
