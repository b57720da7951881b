//! Whether this process is the database's only user, from the restart path's point of view.
//!
//! During a restart (SIGUSR2) two processes share the embedded database: a predecessor that
//! drains, and its successor. A host can be both at once (it started as a successor, its
//! predecessor still drains, and it is asked to restart again), and each ends on its own
//! schedule, so the store hears "sole user" only when neither is running
//! ([`Store::set_sole_user`]).

use super::Store;
use std::sync::Arc;

/// The other processes that may write the database now.
pub struct SoleUser {
    store: Arc<dyn Store>,
    others: tokio::sync::Mutex<Others>,
}

#[derive(Default)]
struct Others {
    predecessor: bool,
    successor: bool,
}

impl SoleUser {
    /// From the start, this process is the only user.
    pub fn new(store: Arc<dyn Store>) -> SoleUser {
        SoleUser {
            store,
            others: tokio::sync::Mutex::new(Others::default()),
        }
    }

    /// A predecessor still serves (`true`, at start), or has exited. Whether this process is
    /// the only user now.
    pub async fn predecessor_running(&self, running: bool) -> bool {
        self.update(|others| others.predecessor = running).await
    }

    /// A successor is starting or serves (`true`: before it starts), or failed to start. One
    /// that took over is never reported gone: this process drains and exits beside it.
    pub async fn successor_running(&self, running: bool) -> bool {
        self.update(|others| others.successor = running).await
    }

    async fn update(&self, change: impl FnOnce(&mut Others)) -> bool {
        let mut others = self.others.lock().await;
        change(&mut others);
        let sole = !others.predecessor && !others.successor;
        // Under the lock, so that two changes reach the store in the order they were made.
        self.store.set_sole_user(sole).await;
        sole
    }
}
