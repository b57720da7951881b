//! The restart path's decisions: when a successor is asked for, start it and hand over
//! (one request at a time), and keep the store told whether this process is the database's
//! only user while a predecessor or a successor runs beside it. The mechanics of starting a
//! successor and taking over sockets are [`crate::handover`]'s; `SIGUSR2` comes through
//! [`crate::signals`], `POST /admin/restart` through the admin API.

use crate::handover::{self, Handover, RestartRequest, RestartRequests};
use crate::signals;
use crate::state::AppState;
use crate::store::sole_user::SoleUser;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// A running host's restart path: the task that serves restart requests, and how the host
/// learns that a successor took over.
pub struct RestartPath {
    handed_over: Arc<Notify>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RestartPath {
    /// Starts serving the requests of `requests` (the admin API's and `SIGUSR2`'s, which
    /// `restart` sends), and, in a successor, tracks its predecessor's exit for the store.
    pub async fn start(
        handover: Handover,
        restart: RestartRequests,
        requests: mpsc::Receiver<RestartRequest>,
        state: AppState,
    ) -> RestartPath {
        let log = state.log.clone();
        let sole_user = Arc::new(SoleUser::new(state.store.clone()));
        if let Some(predecessor) = handover::predecessor() {
            // The predecessor still serves its last requests on the same database.
            sole_user.predecessor_running(true).await;
            tokio::spawn(sole_user_once_exited(
                predecessor,
                sole_user.clone(),
                log.clone(),
            ));
        }
        let handed_over = Arc::new(Notify::new());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve_requests(
            handover,
            requests,
            stopped,
            handed_over.clone(),
            state,
            sole_user,
        ));
        signals::restart_on_user2(restart, log);
        RestartPath {
            handed_over,
            stop,
            task,
        }
    }

    /// Resolves once a successor serves with this host's sockets.
    pub async fn handed_over(&self) {
        self.handed_over.notified().await;
    }

    /// Takes no more restart requests (one under way is finished first) and closes the
    /// copies of the sockets kept for a successor.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves restart requests one at a time until a successor has taken over (then notifies
/// `handed_over`), or until `stop` (a restart under way is finished first). `handover`, and
/// its copies of the sockets, are dropped on return.
async fn serve_requests(
    handover: Handover,
    mut requests: mpsc::Receiver<RestartRequest>,
    mut stop: oneshot::Receiver<()>,
    handed_over: Arc<Notify>,
    state: AppState,
    sole_user: Arc<SoleUser>,
) {
    let log = &state.log;
    loop {
        let reply = tokio::select! {
            // A stop that comes with a restart request wins: no successor starts after it.
            biased;
            _ = &mut stop => return,
            request = requests.recv() => match request {
                Some(reply) => reply,
                None => return,
            },
        };
        slog::info!(
            log,
            "restart: starting a successor with this host's sockets"
        );
        // From now on the successor may write the database too.
        sole_user.successor_running(true).await;
        let outcome = handover.start_successor().await;
        let taken_over = outcome.is_ok();
        if !taken_over {
            sole_user.successor_running(false).await;
        }
        match &outcome {
            Ok(pid) => {
                slog::info!(log, "restart: the successor serves; this host drains and exits"; "successor_pid" => pid);
                crate::process::announce(&format!("successor {pid} ready"));
            }
            Err(e) => slog::error!(log, "restart failed; this host keeps serving"; "error" => %e),
        }
        let _ = reply.send(outcome);
        if taken_over {
            handed_over.notify_one();
            return;
        }
    }
}

/// Tells the store once the predecessor has exited: this process, its child until then, has
/// been re-parented.
async fn sole_user_once_exited(predecessor: u32, sole_user: Arc<SoleUser>, log: slog::Logger) {
    let mut check = tokio::time::interval(Duration::from_millis(100));
    while std::os::unix::process::parent_id() == predecessor {
        check.tick().await;
    }
    if sole_user.predecessor_running(false).await {
        slog::info!(log, "restart: the predecessor has exited; this host is the database's only user"; "predecessor_pid" => predecessor);
    } else {
        slog::info!(log, "restart: the predecessor has exited; a successor shares the database"; "predecessor_pid" => predecessor);
    }
}
