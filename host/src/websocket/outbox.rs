//! A socket's outbox: the bounded queue its writer sends from, and the signal that ends the
//! socket. Its replies (from command tasks) and its pushes (from [`crate::push`]'s delivery)
//! go in without waiting: a full queue means the client is not reading, and ends the socket
//! with 4003 instead of growing.

use super::close::Close;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the writer sends.
pub(crate) enum Outgoing {
    Text(String),
    Ping,
    /// A push, already rendered; `id` lets the writer skip one it has sent (a push found both
    /// in a reconnecting socket's backlog and among the new ones).
    Push {
        id: i64,
        text: Arc<str>,
    },
    /// A resuming socket's backlog (at most `push.backlog_max` pushes), in id order: one slot
    /// of the queue, however many it holds, so a backlog longer than `socket.send_queue`
    /// does not look like a client that does not read.
    Backlog(Vec<(i64, Arc<str>)>),
}

/// Why the socket must end; the first reason wins.
#[derive(Default)]
pub(crate) struct Ending {
    pub signal: CancellationToken,
    why: OnceLock<Close>,
}

impl Ending {
    pub fn end(&self, why: Close) {
        let _ = self.why.set(why);
        self.signal.cancel();
    }

    pub fn why(&self) -> Close {
        self.why.get().copied().unwrap_or(Close::Gone)
    }
}

/// Where messages for one socket go.
#[derive(Clone)]
pub(crate) struct Outbox {
    queue: mpsc::Sender<Outgoing>,
    ending: Arc<Ending>,
}

/// What became of a message handed to an [`Outbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Queued,
    /// The queue was full: the message is dropped and the socket ends (4003).
    Full,
    /// The socket has closed.
    Closed,
}

impl Outbox {
    pub fn new(queue: mpsc::Sender<Outgoing>, ending: Arc<Ending>) -> Outbox {
        Outbox { queue, ending }
    }

    pub fn deliver(&self, outgoing: Outgoing) -> Delivery {
        match self.queue.try_send(outgoing) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ending.end(Close::TooSlow);
                Delivery::Full
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    /// Ends the socket (after what is queued, for the reasons that send it).
    pub fn end(&self, why: Close) {
        self.ending.end(why);
    }
}
