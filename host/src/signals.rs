//! The signals a serving host answers, in one place: `SIGTERM` and `SIGINT` stop it (the
//! shutdown path), `SIGUSR2` asks for a successor (the restart path, [`crate::restart`]), and
//! `SIGHUP` rescans the plugins directory (the reload path). Each only asks: what happens
//! then is the business of the path it asks.

use crate::fleet::follow::Follower;
use crate::handover::RestartRequests;
use crate::plugins::Registry;
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// `SIGTERM` and `SIGINT`, watched from the moment this is made (a process that says it is
/// ready must already handle them: their default action kills it without a shutdown).
pub struct Shutdown {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Shutdown {
    pub fn watch() -> Shutdown {
        Shutdown {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves on the first of them; never, if they could not be watched.
    pub async fn received(mut self) {
        let (Some(term), Some(int)) = (self.term.as_mut(), self.int.as_mut()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// Watches `SIGUSR2` now, then, until a restart succeeds, asks for one at each, as
/// `POST /admin/restart` does. Must be called before the process says it is ready: the
/// signal's default action kills it.
pub fn restart_on_user2(restart: RestartRequests, log: slog::Logger) {
    let Ok(mut user2) = signal(SignalKind::user_defined2()) else {
        slog::warn!(
            log,
            "cannot watch SIGUSR2: restart with POST /admin/restart"
        );
        return;
    };
    tokio::spawn(async move {
        while user2.recv().await.is_some() {
            slog::info!(log, "SIGUSR2: restarting the host binary");
            if restart.request().await.is_ok() {
                return;
            }
        }
    });
}

/// Each `SIGHUP` rescans the plugins directory, as the watcher would.
pub async fn rescan_on_hangup(registry: Arc<Registry>, log: slog::Logger) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        slog::info!(log, "SIGHUP: rescanning the plugins directory");
        if let Err(e) = registry.rescan().await {
            slog::error!(log, "rescan failed"; "error" => %e);
        }
    }
}

/// With `plugins.source = "database"`, SIGHUP reads the fleet's releases again
/// ([`Follower::catch_up`]) instead: the plugins directory is the follower's cache, which a
/// rescan would read behind its back (in the middle of an install, a library put aside
/// looks removed).
pub async fn catch_up_on_hangup(follower: Arc<Follower>, log: slog::Logger) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        slog::info!(log, "SIGHUP: reading the fleet's releases again");
        if let Err(e) = follower.catch_up().await {
            slog::error!(log, "cannot read the fleet's releases"; "error" => %e);
        }
    }
}
