//! The state every request shares: one cheap-to-clone handle.

use crate::clock::Clock;
use crate::config::Config;
use crate::handover::RestartRequests;
use crate::metrics::Metrics;
use crate::player_locks::PlayerLocks;
use crate::plugins::Registry;
use crate::push::{Accounts, PushHub};
use crate::session::cache::SessionCache;
use crate::static_files::StaticFiles;
use crate::store::Store;
use crate::websocket::WebSockets;
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
    /// Sessions read recently, so that most requests skip the session query.
    pub sessions: SessionCache,
    /// One player's commands run one at a time.
    pub player_locks: PlayerLocks,
    pub log: slog::Logger,
    /// The files of `paths.static_dir`, if set.
    pub static_files: Option<StaticFiles>,
    /// Request counts and latencies; the rest is read from the fields above when scraped.
    pub metrics: Metrics,
    /// The `game-host` binary: the admin API runs `game-host publish` with it, in a process of
    /// its own ([`crate::server::Deps::game_host`]).
    pub game_host: std::path::PathBuf,
    /// Asks for a successor process (`POST /admin/restart`); `None` when there is no binary
    /// to start (the host runs inside tests).
    pub restart: Option<RestartRequests>,
    /// The WebSockets open on this host (`GET /ws`).
    pub websockets: WebSockets,
    /// The players connected here, for pushes ([`crate::push`]).
    pub pushes: Arc<PushHub>,
    /// Accounts and player ids, as read.
    pub accounts: Accounts,
    /// Every request being served, wherever it runs ([`crate::listener`]'s `ToTheEnd`): a
    /// client that hangs up does not cancel its request, and shutdown waits for them all.
    pub requests: tokio_util::task::TaskTracker,
    /// Set when the host stops accepting (a signal, or a successor took the sockets over):
    /// `/health` answers 503 and every game API reply closes its connection.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        (registry, store, pushes): (Arc<Registry>, Arc<dyn Store>, Arc<PushHub>),
        deps: &crate::server::Deps,
        metrics: Metrics,
        restart: Option<RestartRequests>,
    ) -> Self {
        let (clock, log) = (deps.clock.clone(), deps.log.clone());
        let sessions = SessionCache::new(config.session.recheck_ms());
        let static_files = config.paths.static_dir.as_deref().map(StaticFiles::new);
        let websockets = WebSockets::new(&config.socket);
        AppState(Arc::new(Shared {
            config,
            registry,
            store,
            sessions,
            clock,
            player_locks: PlayerLocks::default(),
            log,
            static_files,
            metrics,
            game_host: deps.game_host.clone(),
            restart,
            websockets,
            pushes,
            accounts: Accounts::default(),
            requests: tokio_util::task::TaskTracker::new(),
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
