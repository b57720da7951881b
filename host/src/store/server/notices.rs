//! PostgreSQL's `LISTEN`/`NOTIFY`: a change of the fleet's desired releases notifies
//! [`FLEET_CHANNEL`], a turn that pushes notifies [`PUSH_CHANNEL`], each in its own transaction
//! (PostgreSQL delivers a notice at commit). Each host listens on one connection of its own,
//! for both channels, which wakes its fleet follower and its push hub at once instead of at
//! their next poll. MariaDB has no such thing: its hosts poll (`fleet.poll_ms`,
//! `push.poll_ms`), as every host also keeps doing here, more slowly, so a notice lost while
//! the listening connection was down costs one poll.

use sqlx::postgres::PgListener;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The channel the fleet's changes notify.
pub const FLEET_CHANNEL: &str = "game_host_fleet";

/// The channel a turn that pushes notifies.
pub const PUSH_CHANNEL: &str = "game_host_push";

/// Every channel a host listens on.
const CHANNELS: [&str; 2] = [FLEET_CHANNEL, PUSH_CHANNEL];

/// The listening task, started by the first subscriber.
pub(super) struct Notices {
    url: String,
    /// The task, and what it bumps on each notice of each channel ([`CHANNELS`]' order). A std
    /// `Mutex`: held only to start or stop it.
    listening: Mutex<Option<Listening>>,
}

/// A receiver per channel, and the task that feeds them.
type Listening = (Vec<watch::Receiver<u64>>, JoinHandle<()>);

impl Notices {
    pub(super) fn new(url: &str) -> Notices {
        Notices {
            url: url.to_owned(),
            listening: Mutex::new(None),
        }
    }

    /// A receiver that changes on every notice of `channel` (and once whenever listening
    /// starts again, in case one was missed); starts listening at the first call.
    ///
    /// # Panics
    /// If `channel` is not one of [`FLEET_CHANNEL`] and [`PUSH_CHANNEL`].
    pub(super) fn subscribe(&self, channel: &str) -> watch::Receiver<u64> {
        let index = CHANNELS
            .iter()
            .position(|known| *known == channel)
            .expect("a channel the host listens on");
        let mut listening = self.listening.lock().unwrap_or_else(|e| e.into_inner());
        let (receivers, _) = listening.get_or_insert_with(|| {
            let (senders, receivers) = CHANNELS.iter().map(|_| watch::channel(0)).unzip();
            let task = tokio::spawn(listen(self.url.clone(), senders));
            (receivers, task)
        });
        receivers[index].clone()
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

/// Listens on [`CHANNELS`] until aborted or nobody subscribes any more, connecting again with
/// a growing pause (up to 5 s) when the connection fails.
async fn listen(url: String, changed: Vec<watch::Sender<u64>>) {
    let bump = |sender: &watch::Sender<u64>| sender.send_modify(|n| *n += 1);
    let mut pause = Duration::from_millis(100);
    while !changed.iter().all(watch::Sender::is_closed) {
        if let Ok(mut listener) = PgListener::connect(&url).await {
            if listener.listen_all(CHANNELS).await.is_ok() {
                pause = Duration::from_millis(100);
                changed.iter().for_each(bump);
                while let Ok(notice) = listener.recv().await {
                    if let Some(index) = CHANNELS.iter().position(|c| *c == notice.channel()) {
                        bump(&changed[index]);
                    }
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
