//! PostgreSQL's `LISTEN`/`NOTIFY` for the fleet: every change of the fleet's desired releases
//! notifies the channel [`CHANNEL`] in its own transaction (PostgreSQL delivers it at commit),
//! and each following host listens on one connection of its own, which wakes its follower at
//! once instead of at its next poll. MariaDB has no such thing: its hosts poll the change
//! counter (`fleet.poll_ms`), as every host also keeps doing here, so a notice lost while the
//! listening connection was down costs one poll.

use sqlx::postgres::PgListener;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The channel the fleet's changes notify.
pub const CHANNEL: &str = "game_host_fleet";

/// The listening task, started by the first follower that asks for notices.
pub(super) struct Notices {
    url: String,
    /// The task and what it bumps on each notice. A std `Mutex`: held only to start or stop it.
    listening: Mutex<Option<(watch::Receiver<u64>, JoinHandle<()>)>>,
}

impl Notices {
    pub(super) fn new(url: &str) -> Notices {
        Notices {
            url: url.to_owned(),
            listening: Mutex::new(None),
        }
    }

    /// A receiver that changes on every notice (and once whenever listening starts again, in
    /// case one was missed); starts listening at the first call.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        let mut listening = self.listening.lock().unwrap_or_else(|e| e.into_inner());
        let (receiver, _) = listening.get_or_insert_with(|| {
            let (changed, receiver) = watch::channel(0);
            let task = tokio::spawn(listen(self.url.clone(), changed));
            (receiver, task)
        });
        receiver.clone()
    }

    /// Stops listening (the store closes).
    pub(super) fn stop(&self) {
        let listening = self
            .listening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((_, task)) = listening {
            task.abort();
        }
    }
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Listens on [`CHANNEL`] until aborted or nobody subscribes any more, connecting again with a
/// growing pause (up to 5 s) when the connection fails.
async fn listen(url: String, changed: watch::Sender<u64>) {
    let mut pause = Duration::from_millis(100);
    while !changed.is_closed() {
        if let Ok(mut listener) = PgListener::connect(&url).await {
            if listener.listen(CHANNEL).await.is_ok() {
                pause = Duration::from_millis(100);
                changed.send_modify(|n| *n += 1);
                while listener.recv().await.is_ok() {
                    changed.send_modify(|n| *n += 1);
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
