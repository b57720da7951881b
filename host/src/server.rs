//! The server's life: start (open the store, load the modules), serve connections, and shut
//! down in order.
//!
//! Shutdown path: the shutdown future resolves → stop accepting → `/health` answers 503 and
//! new commands -6 → each connection finishes its in-flight request and closes → wait under
//! the grace period and log how it ended → run the modules' shutdown hooks, join the module
//! threads, unload the libraries → close the store.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::http;
use crate::plugins::watcher::{self, Watcher};
use crate::plugins::{Registry, ScanReport};
use crate::state::AppState;
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the host needs besides its config; tests replace the clock.
pub struct Deps {
    pub log: slog::Logger,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(log: slog::Logger) -> Self {
        Deps {
            log,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot prepare the plugins directory {dir}: {source}")]
    Plugins { dir: String, source: std::io::Error },
    #[error("cannot watch the plugins directory {dir}: {source}")]
    Watch { dir: String, source: notify::Error },
}

/// A started host: store open, modules loaded, not yet serving.
pub struct Host {
    state: AppState,
    /// What loading the plugins directory did at start.
    pub scan: ScanReport,
    tasks: Tasks,
}

/// The background work of a running host: retiring old versions, watching for new ones.
struct Tasks {
    retirement: tokio::task::JoinHandle<()>,
    watcher: Option<Watcher>,
    rescan_on_hangup: tokio::task::JoinHandle<()>,
}

impl Tasks {
    fn start(
        registry: &Arc<Registry>,
        config: &Config,
        log: &slog::Logger,
    ) -> notify::Result<Tasks> {
        let watcher = if config.plugins.watch {
            let debounce = Duration::from_millis(config.plugins.debounce_ms);
            Some(watcher::start(registry.clone(), debounce, log.clone())?)
        } else {
            None
        };
        Ok(Tasks {
            retirement: registry.spawn_retirement(),
            watcher,
            rescan_on_hangup: tokio::spawn(rescan_on_hangup(registry.clone(), log.clone())),
        })
    }

    fn stop(self) {
        drop(self.watcher);
        self.rescan_on_hangup.abort();
        self.retirement.abort();
    }
}

/// `SIGHUP` rescans the plugins directory, as the watcher would.
async fn rescan_on_hangup(registry: Arc<Registry>, log: slog::Logger) {
    use tokio::signal::unix::{signal, SignalKind};
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

impl Host {
    /// Opens the store and loads every module in the plugins directory.
    pub async fn start(config: Config, deps: Deps) -> Result<Host, StartError> {
        let config = Arc::new(config);
        let store = SqliteStore::open(&config.paths.data_dir.join("game.db"))?;
        let plugins_error = |source| StartError::Plugins {
            dir: config.paths.plugins_dir.display().to_string(),
            source,
        };
        let registry = Registry::new(config.clone(), deps.clock.clone(), deps.log.clone())
            .map_err(plugins_error)?;
        // Start-up is a rescan from empty: the same path every later change takes.
        let scan = registry.rescan().await.map_err(plugins_error)?;
        let registry = Arc::new(registry);
        let tasks = Tasks::start(&registry, &config, &deps.log).map_err(|e| StartError::Watch {
            dir: config.paths.plugins_dir.display().to_string(),
            source: e,
        })?;
        let state = AppState::new(config, registry, Arc::new(store), deps.clock, deps.log);
        Ok(Host { state, scan, tasks })
    }

    /// A handle on the shared state (tests inspect the registry through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves `listener` until `shutdown` resolves, then shuts down in order.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let state = self.state;
        let graceful = GracefulShutdown::new();
        // Module changes stop first: shutdown retires everything itself.
        let tasks = self.tasks;
        accept_until(&listener, &state, &graceful, shutdown).await;
        state.begin_shutdown();
        drop(listener);
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        slog::info!(state.log, "shutting down: no longer accepting"; "grace_secs" => grace.as_secs());
        match tokio::time::timeout(grace, graceful.shutdown()).await {
            Ok(()) => slog::info!(state.log, "all connections finished"),
            Err(_) => slog::warn!(
                state.log,
                "grace period over; cutting the remaining connections"
            ),
        }
        tasks.stop();
        let retiring = state.clone();
        let deadline = Instant::now() + grace;
        let _ = tokio::task::spawn_blocking(move || retiring.registry.shutdown(deadline)).await;
        slog::info!(state.log, "shut down");
    }
}

/// Starts the host and serves until `shutdown` resolves: what `main` does, for tests.
pub async fn run(
    listener: TcpListener,
    config: Config,
    deps: Deps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    Host::start(config, deps)
        .await?
        .serve(listener, shutdown)
        .await;
    Ok(())
}

async fn accept_until(
    listener: &TcpListener,
    state: &AppState,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let state = state.clone();
                let service = service_fn(move |request| http::handle(state.clone(), request));
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that hangs up mid-request is not the host's error.
                    let _ = connection.await;
                });
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                slog::warn!(state.log, "accept failed"; "error" => %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
