//! The server's life: start (open the store, load the modules), serve connections, and shut
//! down in order.
//!
//! Shutdown path: the shutdown future resolves → stop accepting → `/health` answers 503 and
//! new commands -6 → each connection finishes its in-flight request and closes → wait under
//! the grace period and log how it ended → run the modules' shutdown hooks, join the module
//! threads, unload the libraries → close the store.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::plugins::watcher::{self, Watcher};
use crate::plugins::{Registry, ScanReport};
use crate::state::AppState;
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;
use crate::{admin, http, listener};
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
    #[error("cannot listen for the admin API on {address}: {source}")]
    Admin {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch the plugins directory {dir}: {source}")]
    Watch { dir: String, source: notify::Error },
}

/// A started host: store open, modules loaded, not yet serving.
pub struct Host {
    state: AppState,
    /// What loading the plugins directory did at start.
    pub scan: ScanReport,
    tasks: Tasks,
    /// The admin API's listener, bound at start.
    admin: Option<TcpListener>,
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
        let admin = match config.admin.listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| StartError::Admin { address, source })?,
            ),
            None => None,
        };
        let state = AppState::new(config, registry, Arc::new(store), deps.clock, deps.log);
        Ok(Host {
            state,
            scan,
            tasks,
            admin,
        })
    }

    /// A handle on the shared state (tests inspect the registry through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves `listener` until `shutdown` resolves, then shuts down in order.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let Host {
            state,
            tasks,
            admin,
            ..
        } = self;
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = admin.map(|listener| {
            let stopped = async {
                let _ = admin_stopped.await;
            };
            tokio::spawn(listener::accept_until(
                listener,
                state.clone(),
                admin::handle,
                stopped,
            ))
        });
        let clients = listener::accept_until(listener, state.clone(), http::handle, shutdown).await;
        state.begin_shutdown();
        let _ = stop_admin.send(());
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        slog::info!(state.log, "shutting down: no longer accepting"; "grace_secs" => grace.as_secs());
        let admin = match admin {
            Some(task) => task.await.ok(),
            None => None,
        };
        let finished = async {
            tokio::join!(clients.shutdown(), async {
                if let Some(admin) = admin {
                    admin.shutdown().await;
                }
            })
        };
        match tokio::time::timeout(grace, finished).await {
            Ok(_) => slog::info!(state.log, "all connections finished"),
            Err(_) => slog::warn!(
                state.log,
                "grace period over; cutting the remaining connections"
            ),
        }
        // Module changes stop before the modules do: shutdown retires everything itself.
        tasks.stop();
        let retiring = state.clone();
        let deadline = Instant::now() + grace;
        let _ = tokio::task::spawn_blocking(move || retiring.registry.shutdown(deadline)).await;
        slog::info!(state.log, "shut down");
    }

    /// The admin listener's address, if it has one.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
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
