//! The state every request shares: one cheap-to-clone handle.

use crate::clock::Clock;
use crate::config::Config;
use crate::player_locks::PlayerLocks;
use crate::plugins::Registry;
use crate::store::Store;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A handle on the host's shared state; cloning it is one `Arc` increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The shared state itself.
pub struct Shared {
    /// The effective configuration, fixed at start.
    pub config: Arc<Config>,
    /// The modules and the threads that run them.
    pub registry: Arc<Registry>,
    /// Players and sessions.
    pub store: Arc<dyn Store>,
    /// The host clock: sessions, module calls.
    pub clock: Arc<dyn Clock>,
    /// One player's commands run one at a time.
    pub player_locks: PlayerLocks,
    pub log: slog::Logger,
    /// Set once shutdown begins: `/health` answers 503 and new commands -6.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
    ) -> Self {
        AppState(Arc::new(Shared {
            config,
            registry,
            store,
            clock,
            player_locks: PlayerLocks::default(),
            log,
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
