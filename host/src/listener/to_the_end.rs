//! A request future that runs to its end even if whoever polls it goes away.
//!
//! hyper drops a connection's service future when its client hangs up. [`ToTheEnd`] polls
//! the request future in place, at no cost while the client stays; if it is dropped before the
//! request is done, it moves the rest of the request into a task of its own, which finishes
//! it. Moving it is sound: the request future is pinned in a `Box`, and only the box moves.
//! The request counts in the host's [`TaskTracker`] from the moment hyper hands it over to
//! its end, in place or in its task, so that shutdown waits for it (up to
//! `server.shutdown_grace_secs`).
//!
//! Spawning every request into a task instead cost about a tenth of the `read` throughput
//! (an extra task to schedule and wake per request); this costs one allocation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

/// A request future that is finished in a task of its own if it is dropped before its end.
pub struct ToTheEnd<F: Future<Output = T> + Send + 'static, T: Send + 'static> {
    /// `None` once done.
    request: Option<Pin<Box<F>>>,
    /// Counts the request as running in the tracker until it is done.
    running: Option<TaskTrackerToken>,
}

impl<F, T> ToTheEnd<F, T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    pub fn new(request: F, requests: &TaskTracker) -> Self {
        ToTheEnd {
            request: Some(Box::pin(request)),
            running: Some(requests.token()),
        }
    }
}

impl<F, T> Future for ToTheEnd<F, T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Taken out while it is polled: if it panics, it is dropped as the panic unwinds, and
        // `Drop` finds nothing to finish (a panicked future must not be polled again).
        let mut request = self
            .request
            .take()
            .expect("a request future is not polled after its end");
        match request.as_mut().poll(cx) {
            Poll::Ready(reply) => {
                self.running = None;
                Poll::Ready(reply)
            }
            Poll::Pending => {
                self.request = Some(request);
                Poll::Pending
            }
        }
    }
}

impl<F, T> Drop for ToTheEnd<F, T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn drop(&mut self) {
        let (Some(request), Some(running)) = (self.request.take(), self.running.take()) else {
            return;
        };
        // Only a runtime that is shutting down drops its tasks, this one included: after
        // `server.shutdown_grace_secs`, the host no longer waits for requests
        // (ARCHITECTURE.md, "Cancellation"; the store's own cancel safety holds then).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _reply = request.await;
                drop(running);
            });
        }
    }
}

#[cfg(test)]
mod tests;
