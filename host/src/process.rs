//! What `game-host serve` does as a process, around the host: take the listening sockets
//! from a predecessor or systemd (or bind them), start the host with its restart path on,
//! say where it listens and that it is ready, and serve until a signal or a successor stops
//! it.
//! `main.rs` only parses the command line, sets up logging and calls [`serve`].

use crate::handover;
use crate::server::{Deps, Host, StartError};
use crate::signals;
use crate::sockets::{ListenError, Listeners};
use crate::Config;

/// Why `game-host serve` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Serves until `SIGTERM`/`SIGINT`, or until a successor (`SIGUSR2`, `POST /admin/restart`)
/// has taken over; then shuts down in order.
pub async fn serve(config: Config, deps: Deps) -> Result<(), ServeError> {
    let log = deps.log.clone();
    // Watched before anything else: from here on a TERM or INT shuts down in order.
    let shutdown = signals::Shutdown::watch();
    let listeners = Listeners::inherited_or_bound(&config)?;
    let deps = Deps {
        can_restart: true,
        ..deps
    };
    let host = Host::start(config, deps, listeners).await?;
    let address = host.addr();
    announce(&format!("listening on {address}"));
    if let Some(admin) = host.admin_addr() {
        announce(&format!("admin listening on {admin}"));
        slog::info!(log, "admin API listening"; "address" => %admin);
    }
    slog::info!(log, "serving"; "address" => %address, "modules" => host.scan.loaded.join(","), "pid" => std::process::id());
    if let Err(e) = handover::notify_ready() {
        slog::warn!(log, "cannot tell the predecessor that this host is ready"; "error" => %e);
    }
    host.serve(shutdown.received()).await;
    Ok(())
}

/// A line for whoever started the host (scripts, tests) on stdout. A serving host's stdout may
/// be closed by then; that must not stop it, so errors are ignored (`println!` would panic).
pub fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
