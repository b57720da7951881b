//! What `game-host serve` does as a process, around the host: take the listening sockets
//! from a predecessor or systemd (or bind them), start the host, set up the restart path,
//! say where it listens and that it is ready, and serve until a signal or a successor stops it.
//! `main.rs` only parses the command line, sets up logging and calls [`serve`].

use crate::handover::{self, Handover, RestartRequests};
use crate::restart;
use crate::server::{Deps, Host, StartError};
use crate::signals;
use crate::store::sole_user::SoleUser;
use crate::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why `game-host serve` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot take the inherited sockets (LISTEN_FDS): {0}")]
    Inherited(std::io::Error),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot prepare the listening sockets: {0}")]
    Sockets(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Serves until `SIGTERM`/`SIGINT`, or until a successor (`SIGUSR2`, `POST /admin/restart`)
/// has taken over; then shuts down in order.
pub async fn serve(config: Config, mut deps: Deps) -> Result<(), ServeError> {
    let log = deps.log.clone();
    let (client, admin) = listeners(&config)?;
    let address = client.local_addr().map_err(ServeError::Sockets)?;
    let duplicate = |l: &std::net::TcpListener| l.try_clone().map_err(ServeError::Sockets);
    let handover = Handover::new(
        duplicate(&client)?,
        admin.as_ref().map(duplicate).transpose()?,
        Duration::from_secs(config.server.handover_timeout_secs),
    );
    let (restart, requests) = RestartRequests::channel();
    deps.admin_listener = admin;
    deps.restart = Some(restart.clone());
    let host = Host::start(config, deps).await?;
    let sole_user = Arc::new(SoleUser::new(host.state().store.clone()));
    if let Some(predecessor) = handover::predecessor() {
        // The predecessor still serves its last requests on the same database.
        sole_user.predecessor_running(true).await;
        tokio::spawn(restart::sole_user_once_exited(
            predecessor,
            sole_user.clone(),
            log.clone(),
        ));
    }
    let handed_over = Arc::new(tokio::sync::Notify::new());
    let (stop_restarts, restarts_stopped) = tokio::sync::oneshot::channel();
    let restarter = tokio::spawn(restart::serve_requests(
        handover,
        requests,
        restarts_stopped,
        handed_over.clone(),
        host.state(),
        sole_user,
    ));
    tokio::spawn(signals::restart_on_user2(restart, log.clone()));
    announce(&format!("listening on {address}"));
    if let Some(admin) = host.admin_addr() {
        announce(&format!("admin listening on {admin}"));
        slog::info!(log, "admin API listening"; "address" => %admin);
    }
    slog::info!(log, "serving"; "address" => %address, "modules" => host.scan.loaded.join(","), "pid" => std::process::id());
    if let Err(e) = handover::notify_ready() {
        slog::warn!(log, "cannot tell the predecessor that this host is ready"; "error" => %e);
    }
    let client = client
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(client))
        .map_err(ServeError::Sockets)?;
    let stop = async {
        tokio::select! {
            () = signals::shutdown() => {}
            () = handed_over.notified() => {}
        }
        // The copies of the listening sockets kept for a successor close before the host's
        // own: while one is open the kernel goes on queueing connections that nobody accepts,
        // and resets them, requests and all, when the process exits.
        let _ = stop_restarts.send(());
        let _ = restarter.await;
    };
    host.serve(client, stop).await;
    Ok(())
}

/// The client and admin listeners: inherited (systemd, or a predecessor), else bound.
fn listeners(
    config: &Config,
) -> Result<(std::net::TcpListener, Option<std::net::TcpListener>), ServeError> {
    if let Some(inherited) = handover::inherited_listeners().map_err(ServeError::Inherited)? {
        return Ok((inherited.client, inherited.admin));
    }
    let bind = |address: SocketAddr| {
        std::net::TcpListener::bind(address).map_err(|source| ServeError::Bind { address, source })
    };
    let client = bind(config.server.listen)?;
    let admin = config.admin.listen.map(bind).transpose()?;
    Ok((client, admin))
}

/// A line for whoever started the host (scripts, tests) on stdout. A serving host's stdout may
/// be closed by then; that must not stop it, so errors are ignored (`println!` would panic).
pub fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
