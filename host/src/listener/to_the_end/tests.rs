use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A request that waits for `go`, then marks `done`.
async fn request(go: Arc<tokio::sync::Notify>, done: Arc<AtomicBool>) -> u32 {
    go.notified().await;
    done.store(true, Ordering::SeqCst);
    7
}

#[tokio::test]
async fn a_request_polled_to_its_end_gives_its_reply_in_place() {
    let requests = TaskTracker::new();
    let (go, done) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(AtomicBool::new(false)),
    );
    go.notify_one();
    let reply = ToTheEnd::new(request(go, done.clone()), &requests).await;
    assert_eq!(reply, 7);
    assert!(done.load(Ordering::SeqCst));
    assert!(requests.is_empty(), "done: no longer counted");
}

#[tokio::test]
async fn a_request_dropped_midway_runs_to_its_end_and_counts_until_then() {
    let requests = TaskTracker::new();
    let (go, done) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(AtomicBool::new(false)),
    );
    let mut running = ToTheEnd::new(request(go.clone(), done.clone()), &requests);
    // Polled once (it waits for `go`), then dropped, as hyper drops a hung-up client's.
    assert!(futures::poll!(&mut running).is_pending());
    drop(running);
    assert_eq!(requests.len(), 1, "the rest of the request still counts");
    assert!(!done.load(Ordering::SeqCst));
    go.notify_one();
    requests.close();
    tokio::time::timeout(Duration::from_secs(5), requests.wait())
        .await
        .expect("the request finished in its own task");
    assert!(done.load(Ordering::SeqCst), "the request ran to its end");
}

#[tokio::test]
async fn a_request_never_polled_still_runs() {
    let requests = TaskTracker::new();
    let (go, done) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(AtomicBool::new(false)),
    );
    go.notify_one();
    drop(ToTheEnd::new(request(go, done.clone()), &requests));
    requests.close();
    tokio::time::timeout(Duration::from_secs(5), requests.wait())
        .await
        .expect("the request finished in its own task");
    assert!(done.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_request_that_panics_is_not_run_again() {
    let requests = TaskTracker::new();
    let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut running = ToTheEnd::new(Panics(polls.clone()), &requests);
    let poll = std::panic::AssertUnwindSafe(|| {
        let waker = futures::task::noop_waker();
        let _ = std::pin::Pin::new(&mut running).poll(&mut Context::from_waker(&waker));
    });
    assert!(
        std::panic::catch_unwind(poll).is_err(),
        "the panic reaches the connection"
    );
    drop(running);
    requests.close();
    tokio::time::timeout(Duration::from_secs(5), requests.wait())
        .await
        .expect("nothing is left counted");
    assert_eq!(polls.load(Ordering::SeqCst), 1, "polled once, never again");
}

/// A future that panics each time it is polled, and counts the polls.
struct Panics(Arc<std::sync::atomic::AtomicU32>);

impl Future for Panics {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("the handler panicked");
    }
}
