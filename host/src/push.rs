//! The push path (docs/PROTOCOL.md, "Pushes"): from a module's command to the sockets of the
//! players it pushes to, on whichever host they are connected.
//!
//! 1. A command records pushes and group changes on its `Ctx`; they come back with its
//!    outcome, are checked and their accounts resolved ([`effects`]), and are written by the
//!    command's turn in its transaction (`store::push`): a refused or failed command pushes
//!    nothing, and a committed one cannot lose its pushes.
//! 2. Every host delivers from the stored pushes, in id order ([`delivery`]): it reads those
//!    after the last it has read when woken (by its own commits at once, by PostgreSQL's
//!    `NOTIFY` for other hosts' commits) or at each poll (`push.poll_ms`: MariaDB has no
//!    notices), and hands each to the sockets of its players it is for ([`PushHub`]): a
//!    player's own pushes, and their groups'.
//! 3. A socket that opens with `since` first gets the persistent pushes it missed (its
//!    backlog), from the same task and before anything newer, so a player reads their pushes
//!    in order, each once (the socket's writer skips an id it has sent).
//!
//! Nothing here touches a module: a hot swap neither loses nor repeats a push.

mod accounts;
mod delivery;
pub mod effects;

pub use accounts::Accounts;
pub use delivery::deliver;

use crate::websocket::Outbox;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// The players connected to this host, by the sockets they have open, and the way to the
/// delivery task.
pub struct PushHub {
    online: Mutex<HashMap<String, Vec<Subscriber>>>,
    /// New sockets, to the delivery task (which sends their backlog first).
    joining: mpsc::UnboundedSender<Joining>,
    joining_rx: Mutex<Option<mpsc::UnboundedReceiver<Joining>>>,
    /// Rung when this host committed pushes.
    committed: Notify,
    next_socket: AtomicU64,
}

/// One socket of a connected player.
#[derive(Clone)]
struct Subscriber {
    socket: u64,
    outbox: Outbox,
    /// Set when its [`Subscription`] drops: a socket that left before the delivery task got
    /// to its joining must not join (it would hold its outbox open).
    left: Arc<AtomicBool>,
}

/// A socket on its way in: its backlog is sent before it gets new pushes.
struct Joining {
    player_id: String,
    since: Option<i64>,
    subscriber: Subscriber,
}

/// A socket's place among the connected; dropped, the socket gets no more pushes.
pub struct Subscription {
    hub: Arc<PushHub>,
    player_id: String,
    socket: u64,
    left: Arc<AtomicBool>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.left.store(true, Ordering::SeqCst);
        let mut online = self.hub.lock_online();
        if let Some(sockets) = online.get_mut(&self.player_id) {
            sockets.retain(|s| s.socket != self.socket);
            if sockets.is_empty() {
                online.remove(&self.player_id);
            }
        }
    }
}

impl Default for PushHub {
    fn default() -> Self {
        let (joining, joining_rx) = mpsc::unbounded_channel();
        PushHub {
            online: Mutex::default(),
            joining,
            joining_rx: Mutex::new(Some(joining_rx)),
            committed: Notify::new(),
            next_socket: AtomicU64::new(1),
        }
    }
}

impl PushHub {
    /// Connects a socket of `player_id`: it gets the persistent pushes after `since` (if
    /// given), then every new push for its player, until the subscription drops.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        player_id: &str,
        since: Option<i64>,
        outbox: Outbox,
    ) -> Subscription {
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let left = Arc::new(AtomicBool::new(false));
        let joining = Joining {
            player_id: player_id.to_owned(),
            since,
            subscriber: Subscriber {
                socket,
                outbox,
                left: left.clone(),
            },
        };
        // The delivery task ends only with the host; a socket that joins later gets nothing.
        let _ = self.joining.send(joining);
        Subscription {
            hub: self.clone(),
            player_id: player_id.to_owned(),
            socket,
            left,
        }
    }

    /// This host committed pushes: the delivery task reads them now.
    pub fn committed(&self) {
        self.committed.notify_one();
    }

    /// Players with a socket on this host.
    pub fn online_players(&self) -> usize {
        self.lock_online().len()
    }

    fn join(&self, player_id: String, subscriber: Subscriber) {
        let mut online = self.lock_online();
        // Under the lock a leaving subscription takes after it says so: it has left, or it
        // will find this entry to remove.
        if subscriber.left.load(Ordering::SeqCst) {
            return;
        }
        online.entry(player_id).or_default().push(subscriber);
    }

    /// The sockets of `player_id` on this host.
    fn sockets_of(&self, player_id: &str) -> Vec<Subscriber> {
        self.lock_online()
            .get(player_id)
            .cloned()
            .unwrap_or_default()
    }

    /// A std `Mutex`: held for a map lookup or change, never across an await.
    fn lock_online(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        self.online.lock().unwrap_or_else(|e| e.into_inner())
    }
}
