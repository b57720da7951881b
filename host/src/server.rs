//! The server's life: start (open the store, load the modules, ready the restart path), serve
//! connections, and shut down in order. The binary ([`crate::process`]) and the in-process
//! tests run this same code.
//!
//! Shutdown path: the shutdown future resolves (a signal, [`crate::signals`]) or a successor
//! took the sockets over ([`crate::restart`]) → the restart path stops (a restart under way
//! finishes; the copies of the sockets kept for a successor close) → stop accepting, close the
//! listeners (connections already in the kernel's queue are taken and served first) →
//! `/health` answers 503, and every game API reply closes its connection → idle keep-alive
//! connections get [`CLOSE_LINGER`] to bring one last request → each connection finishes its
//! in-flight request and closes → wait under the grace period and log how it ended → wait
//! (within the grace period too) for the requests still running after their clients hung up
//! ([`crate::listener`]) → run the modules' shutdown hooks, join the module threads, unload
//! the libraries → close the store.
//!
//! Requests on open connections are served to the end, never refused: a client (nginx with
//! its kept-alive upstream connections) may send on one at any moment, and a request it has
//! sent cannot safely be sent to another host. New connections are refused, which a client can
//! retry anywhere. Hence no request fails when a host behind nginx stops (README, "Several
//! hosts on one database").

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::config::PluginsSource;
use crate::fleet::follow::Follower;
use crate::handover::{self, Handover, RestartRequests};
use crate::metrics::Metrics;
use crate::plugins::watcher::{self, Watcher};
use crate::plugins::{Registry, ScanReport};
use crate::push::PushHub;
use crate::restart::RestartPath;
use crate::sockets::Listeners;
use crate::state::AppState;
use crate::store::sqlite::lock::{LockError, ServingLock, Taken};
use crate::store::{self, DatabaseUrl, StoreError};
use crate::{admin, http, idempotency, listener, signals};
use prometheus_client::metrics::counter::Counter;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Once the host stops accepting, how long idle keep-alive connections stay open before they
/// are closed (less if every connection has closed by then). A client that sends on one in
/// that time gets its reply with `Connection: close`; one that waits longer may find it closed
/// as it sends, so a proxy in front must close idle connections sooner (nginx's upstream
/// `keepalive_timeout` in `config/deploy/nginx/game-host.conf` is 1 s).
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How often the linger looks whether any connection is left.
const LINGER_POLL: Duration = Duration::from_millis(10);

/// What the host needs besides its config; tests replace the clock.
pub struct Deps {
    pub log: slog::Logger,
    pub clock: Arc<dyn Clock>,
    /// The logging queue's count of dropped lines, exported as a metric.
    pub log_dropped: Counter,
    /// Whether this process may start a successor with its sockets (`SIGUSR2`,
    /// `POST /admin/restart`): `game-host serve` may; a host inside another program may not.
    pub can_restart: bool,
    /// The `game-host` binary, which `POST /admin/fleet/publish` runs as `game-host publish`
    /// (this process's own, unless the host runs inside another program: its tests).
    pub game_host: std::path::PathBuf,
}

impl Deps {
    pub fn new(log: slog::Logger) -> Self {
        Deps {
            log,
            clock: Arc::new(SystemClock),
            log_dropped: Counter::default(),
            can_restart: false,
            game_host: std::env::current_exe().unwrap_or_else(|_| "game-host".into()),
        }
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// Another host serves the SQLite file, or it cannot be locked.
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("cannot prepare the plugins directory {dir}: {source}")]
    Plugins { dir: String, source: std::io::Error },
    #[error("cannot serve on the listening sockets: {0}")]
    Sockets(std::io::Error),
    #[error("paths.static_dir {0} is not a folder: create it, or unset static_dir (--static-dir) to serve no files")]
    StaticDir(String),
    #[error("cannot watch the plugins directory {dir}: {source}")]
    Watch { dir: String, source: notify::Error },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// A started host: store open, modules loaded, not yet serving.
pub struct Host {
    state: AppState,
    /// What loading the plugins directory did at start.
    pub scan: ScanReport,
    tasks: Tasks,
    client: TcpListener,
    /// The admin API's listener, if it is on.
    admin: Option<TcpListener>,
    /// `None` when this process may not start a successor ([`Deps::can_restart`]).
    restart: Option<RestartPath>,
    /// The lock on the SQLite file served, held until the store has closed; `None` on a
    /// server database.
    lock: Option<ServingLock>,
}

/// The background work of a running host: retiring old versions, watching for new ones,
/// deleting expired idempotency keys.
struct Tasks {
    retirement: tokio::task::JoinHandle<()>,
    watcher: Option<Watcher>,
    /// With `plugins.source = "database"`: following the fleet's releases.
    follower: Option<tokio::task::JoinHandle<()>>,
    /// SIGHUP: a rescan of the plugins directory, or with the fleet a catch-up.
    on_hangup: tokio::task::JoinHandle<()>,
    key_sweep: tokio::task::JoinHandle<()>,
    /// Pushes to the sockets of this host ([`crate::push::deliver`]); started with the state.
    push_delivery: Option<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    fn start(
        registry: &Arc<Registry>,
        config: &Config,
        deps: &Deps,
        store: &Arc<dyn store::Store>,
        follower: Option<Arc<Follower>>,
    ) -> notify::Result<Tasks> {
        let log = &deps.log;
        // Following the fleet, the plugins directory is the follower's cache: not watched.
        let watcher = if config.plugins.watch && follower.is_none() {
            let debounce = Duration::from_millis(config.plugins.debounce_ms);
            Some(watcher::start(registry.clone(), debounce, log.clone())?)
        } else {
            None
        };
        let on_hangup = match &follower {
            Some(follower) => {
                tokio::spawn(signals::catch_up_on_hangup(follower.clone(), log.clone()))
            }
            None => tokio::spawn(signals::rescan_on_hangup(registry.clone(), log.clone())),
        };
        let follower = follower.map(|follower| tokio::spawn(follower.run()));
        Ok(Tasks {
            retirement: registry.spawn_retirement(),
            watcher,
            follower,
            on_hangup,
            key_sweep: tokio::spawn(idempotency::sweep(
                store.clone(),
                deps.clock.clone(),
                log.clone(),
            )),
            push_delivery: None,
        })
    }

    fn stop(self) {
        drop(self.watcher);
        // Between two autocommit statements or inside one; a release is renamed into place
        // whole or not at all (`fleet::follow`).
        if let Some(follower) = self.follower {
            follower.abort();
        }
        self.on_hangup.abort();
        self.retirement.abort();
        // Cut between two statements or inside one: each is cancel-safe on its own.
        self.key_sweep.abort();
        // Reads, and the prune's one-statement deletes.
        if let Some(delivery) = self.push_delivery {
            delivery.abort();
        }
    }
}

impl Host {
    /// Locks a SQLite file ([`ServingLock`]: refused if another host serves it), opens the
    /// store, loads every module in the plugins directory, and readies the restart path;
    /// serves nothing until [`Host::serve`].
    pub async fn start(
        mut config: Config,
        mut deps: Deps,
        listeners: Listeners,
    ) -> Result<Host, StartError> {
        // Resolved once (the hostname, unless set): every log line, metric and admin reply
        // of this host names it.
        config.server.host_id = config.host_id();
        deps.log = deps
            .log
            .new(slog::o!("host" => config.server.host_id.clone()));
        let config = Arc::new(config);
        if let Some(dir) = &config.paths.static_dir {
            if !dir.is_dir() {
                return Err(StartError::StaticDir(dir.display().to_string()));
            }
        }
        let url = config.database_url()?;
        // Before anything opens the file: a host refused here has not even brought the schema
        // up to date under the one that serves it.
        let lock = lock_sqlite(&url, &deps.log)?;
        // The sockets next: nothing else is running yet if they cannot be used. A successor
        // gets copies of them, and of the lock; this host serves the originals.
        let handover = match deps.can_restart {
            true => Some(Handover::new(
                listeners.duplicate().map_err(StartError::Sockets)?,
                lock.as_ref().map(ServingLock::try_clone).transpose()?,
                Duration::from_secs(config.server.handover_timeout_secs),
            )),
            false => None,
        };
        let client = tokio_listener(listeners.client)?;
        let admin = listeners.admin.map(tokio_listener).transpose()?;
        let store = store::open(&url, &config.pool_settings(), config.sqlite_options()).await?;
        slog::info!(deps.log, "store open"; "database" => %url);
        for warning in store.warnings() {
            slog::warn!(deps.log, "{warning}"; "database" => %url);
        }
        let plugins_error = |source| StartError::Plugins {
            dir: config.paths.plugins_dir.display().to_string(),
            source,
        };
        let registry = Registry::new(
            config.clone(),
            deps.clock.clone(),
            deps.log.clone(),
            store.clone(),
        )
        .map_err(plugins_error)?;
        if config.plugins.source == PluginsSource::Database {
            // The follower's cache as it was before an install that never settled.
            crate::fleet::cache::recover_cache(&config.paths.plugins_dir).map_err(plugins_error)?;
        }
        // Start-up is a rescan from empty: the same path every later change takes.
        let scan = registry.rescan().await.map_err(plugins_error)?;
        let registry = Arc::new(registry);
        // Who is connected here: the push path's, and the fleet report's players online.
        let pushes = Arc::new(PushHub::default());
        let follower = match config.plugins.source {
            PluginsSource::Directory => None,
            PluginsSource::Database => {
                let address = client.local_addr().map_err(StartError::Sockets)?;
                let follower = Arc::new(Follower::new(
                    store.clone(),
                    registry.clone(),
                    deps.clock.clone(),
                    deps.log.clone(),
                    config.fleet.clone(),
                    (config.server.host_id.clone(), address.to_string()),
                    pushes.clone(),
                ));
                // What is published, before serving; a database that does not answer now
                // leaves the cached libraries serving, and the follower catches up later.
                if let Err(e) = follower.catch_up().await {
                    slog::warn!(deps.log, "cannot read the fleet's releases at start; serving the cached libraries"; "error" => %e);
                }
                Some(follower)
            }
        };
        let mut tasks = Tasks::start(&registry, &config, &deps, &store, follower).map_err(|e| {
            StartError::Watch {
                dir: config.paths.plugins_dir.display().to_string(),
                source: e,
            }
        })?;
        let (restart, requests) = RestartRequests::channel();
        let metrics = Metrics::new(deps.log_dropped.clone(), &config.server.host_id);
        let state = AppState::new(
            config,
            (registry, store, pushes),
            &deps,
            metrics,
            handover.as_ref().map(|_| restart.clone()),
        );
        tasks.push_delivery = Some(tokio::spawn(crate::push::deliver(state.clone())));
        let restart = match handover {
            Some(handover) => {
                Some(RestartPath::start(handover, restart, requests, state.clone()).await)
            }
            None => None,
        };
        Ok(Host {
            state,
            scan,
            tasks,
            client,
            admin,
            restart,
            lock,
        })
    }

    /// A handle on the shared state (tests inspect the registry through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves or a successor has taken over, then shuts down in
    /// order (the module's docs).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Host {
            state,
            tasks,
            client,
            admin,
            restart,
            lock,
            ..
        } = self;
        let shutdown = async {
            match restart {
                Some(restart) => {
                    tokio::select! {
                        () = shutdown => {}
                        () = restart.handed_over() => {}
                    }
                    // The copies of the listening sockets kept for a successor close before
                    // the host's own: while one is open the kernel goes on queueing connections
                    // that nobody accepts, and resets them, requests and all, when the process
                    // exits.
                    restart.stop().await;
                }
                None => shutdown.await,
            }
        };
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
        let clients = listener::accept_until(client, state.clone(), http::handle, shutdown).await;
        state.begin_shutdown();
        // Sockets close with 1001 once their commands in flight are answered; their clients
        // open new ones on the successor (during a restart) or another host.
        state.websockets.close_all();
        let _ = stop_admin.send(());
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        let grace_over = tokio::time::Instant::now() + grace;
        slog::info!(state.log, "shutting down: no longer accepting"; "grace_secs" => grace.as_secs());
        let admin = match admin {
            Some(task) => task.await.ok(),
            None => None,
        };
        // Idle keep-alive connections stay open a moment: a client that sends on one gets its
        // reply and `Connection: close`, instead of a connection closed under its request.
        // Busy clients all come by within the linger; clients that hang up end it early.
        let lingering = async {
            while clients.count() + admin.as_ref().map_or(0, listener::Connections::count) > 0 {
                tokio::time::sleep(LINGER_POLL).await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_LINGER.min(grace), lingering).await;
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
        if tokio::time::timeout_at(grace_over, state.websockets.closed())
            .await
            .is_err()
        {
            slog::warn!(state.log, "grace period over; cutting the remaining sockets";
                "sockets" => state.websockets.open());
        }
        // Requests whose clients hung up are not connections any more, but their tasks may
        // still run (a turn to commit): the modules and the store wait for them.
        state.requests.close();
        if tokio::time::timeout_at(grace_over, state.requests.wait())
            .await
            .is_err()
        {
            slog::warn!(state.log, "grace period over; requests still running";
                "requests" => state.requests.len());
        }
        // Module changes stop before the modules do: shutdown retires everything itself.
        tasks.stop();
        let retiring = state.clone();
        let deadline = Instant::now() + grace;
        let _ = tokio::task::spawn_blocking(move || retiring.registry.shutdown(deadline)).await;
        match state.store.close().await {
            Ok(()) => slog::info!(state.log, "database closed"),
            Err(e) => slog::error!(state.log, "closing the database failed"; "error" => %e),
        }
        // Released only now: a host that locks the file next finds it checkpointed and
        // closed. (After a handover the successor's copy keeps it locked.)
        drop(lock);
        slog::info!(state.log, "shut down");
    }

    /// The client listener's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.client
            .local_addr()
            .expect("a listening socket has an address")
    }

    /// The admin listener's address, if it has one.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Locks the SQLite file `url` names ([`ServingLock`]), adopting the lock a predecessor
/// handed over if it is this file's; nothing to lock on a server database or in memory.
fn lock_sqlite(url: &DatabaseUrl, log: &slog::Logger) -> Result<Option<ServingLock>, LockError> {
    let DatabaseUrl::Sqlite(path) = url else {
        return Ok(None);
    };
    let Some((lock, taken)) = ServingLock::take(path, handover::inherited_sqlite_lock())? else {
        return Ok(None);
    };
    let file = lock.path().display().to_string();
    match taken {
        Taken::Locked => slog::info!(log, "database locked for this host"; "lock" => file),
        Taken::Inherited => {
            slog::info!(log, "database lock taken over from the predecessor"; "lock" => file)
        }
        Taken::InheritedOtherFile => slog::warn!(log,
            "the predecessor's database lock is of another file; this host locked its own";
            "lock" => file),
    }
    Ok(Some(lock))
}

/// A listening socket made ready for tokio.
fn tokio_listener(listener: std::net::TcpListener) -> Result<TcpListener, StartError> {
    listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
        .map_err(StartError::Sockets)
}
