//! [`InProcessHost`]: the real host in this process, as `game-host serve` runs it but without
//! the binary around it: `Host::start` on a config, then `Host::serve` in a task of the
//! caller's runtime, on the config's `server.listen` (`127.0.0.1:0` from
//! [`Folders::config`](crate::Folders::config)). Stopped gracefully by [`InProcessHost::stop`];
//! asked to stop, without waiting, when dropped.

use host::plugins::ScanReport;
use host::state::AppState;
use host::{Config, Deps, Host, Listeners};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

/// A host serving in a task of this process.
pub struct InProcessHost {
    /// The client listener's address.
    pub addr: SocketAddr,
    /// The admin API's address, if the config has it on.
    pub admin_addr: Option<SocketAddr>,
    /// What the start-up scan of the plugins folder loaded and refused.
    pub scan: ScanReport,
    /// The running host's shared state: its registry, store, clock.
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InProcessHost {
    /// Binds `config.server.listen` (and `admin.listen`), starts the host (store, modules)
    /// and spawns its serving task: `Host::start` and `Host::serve` as the binary calls them,
    /// with no restart path (a test process cannot be replaced by a successor).
    pub async fn start(config: Config, deps: Deps) -> anyhow::Result<InProcessHost> {
        let listeners = Listeners::bind(&config)?;
        let started = Host::start(config, deps, listeners)
            .await
            .map_err(|e| anyhow::anyhow!("the host does not start: {e}"))?;
        let (addr, admin_addr, scan, state) = (
            started.addr(),
            started.admin_addr(),
            started.scan.clone(),
            started.state(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(started.serve(async {
            let _ = stopped.await;
        }));
        Ok(InProcessHost {
            addr,
            admin_addr,
            scan,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Shuts the host down (its whole shutdown path) and waits until it has; the serving
    /// task's panic, if it had one. A second call does nothing.
    pub async fn stop(&mut self) -> Result<(), JoinError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await,
            None => Ok(()),
        }
    }
}

impl Drop for InProcessHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
