//! The signals a serving host answers, in one place: `SIGTERM` and `SIGINT` stop it (the
//! shutdown path), `SIGUSR2` asks for a successor (the restart path, [`crate::restart`]), and
//! `SIGHUP` rescans the plugins directory (the reload path). Each only asks: what happens
//! then is the business of the path it asks.

use crate::handover::RestartRequests;
use crate::plugins::Registry;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Resolves on `SIGTERM` or `SIGINT`; never, if they cannot be watched.
pub async fn shutdown() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Until a restart succeeds, each `SIGUSR2` asks for one, as `POST /admin/restart` does.
pub async fn restart_on_user2(restart: RestartRequests, log: slog::Logger) {
    let Ok(mut user2) = signal(SignalKind::user_defined2()) else {
        return;
    };
    while user2.recv().await.is_some() {
        slog::info!(log, "SIGUSR2: restarting the host binary");
        if restart.request().await.is_ok() {
            return;
        }
    }
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
