//! Zero-downtime restart of the host binary itself, and the sockets a host inherits.
//!
//! The restart path (`SIGUSR2` or `POST /admin/restart`): start the successor, the binary at the
//! path this process was started from (so an upgraded binary takes over), with this process's
//! listening sockets as fds 3 (client) and 4 (admin) in the systemd socket-activation format
//! (`LISTEN_FDS`, `LISTEN_FDNAMES`) and a pipe on fd 5 (`HANDOVER_READY_FD`). Both processes
//! accept on the same sockets until the successor has loaded its modules and writes `ready` on
//! the pipe; then this process stops accepting and shuts down as on `SIGTERM`. The sockets
//! never close, so no connection is refused. If the successor exits or is not ready in time,
//! it is killed and this process keeps serving.
//!
//! On SQLite, the successor also gets this process's lock on the database file
//! ([`crate::store::sqlite::lock`]) as its standard input (`HANDOVER_SQLITE_LOCK_FD=0`), so
//! that no other host can take the file between the two: see [`inherited_sqlite_lock`].
//!
//! The successor's side is [`inherited_listeners`], [`inherited_sqlite_lock`] and
//! [`notify_ready`]; the same code takes sockets from systemd (`game-host.socket`), and tells
//! systemd its pid and readiness.

use crate::sockets::Listeners;
use crate::store::sqlite::lock::ServingLock;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::sync::{mpsc, oneshot};

/// The variable naming the fd on which a successor reports that it serves.
pub const READY_FD_VAR: &str = "HANDOVER_READY_FD";
/// The predecessor's pid, for its successor.
pub const PREDECESSOR_VAR: &str = "HANDOVER_PREDECESSOR_PID";
/// The variable naming the fd of the predecessor's SQLite lock: always 0, standard input
/// ([`inherited_sqlite_lock`] says why).
pub const SQLITE_LOCK_FD_VAR: &str = "HANDOVER_SQLITE_LOCK_FD";

/// Why no successor took over; the current process keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("cannot start the successor {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the successor exited before it was ready ({0}); see its log lines above")]
    Exited(String),
    #[error("the successor was not ready within {0:?}; it was stopped")]
    NotReady(Duration),
    #[error("a restart is already under way or the host is stopping")]
    Busy,
}

/// Starts successors: knows the binary, its arguments and the sockets to hand over.
pub struct Handover {
    exe: PathBuf,
    args: Vec<OsString>,
    client: TcpListener,
    admin: Option<TcpListener>,
    /// A copy of this process's lock on its SQLite file, for each successor; `None` on a
    /// server database.
    lock: Option<ServingLock>,
    /// How long a successor may take to load its modules and serve.
    ready_timeout: Duration,
}

impl Handover {
    /// `sockets` are duplicates of the sockets this process serves; `lock`, a copy of its lock
    /// on its SQLite file.
    pub fn new(sockets: Listeners, lock: Option<ServingLock>, ready_timeout: Duration) -> Self {
        let Listeners { client, admin } = sockets;
        Handover {
            // The path we were started from, read now: after an upgrade it names the new binary.
            exe: std::env::current_exe().unwrap_or_else(|_| "game-host".into()),
            args: std::env::args_os().skip(1).collect(),
            client,
            admin,
            lock,
            ready_timeout,
        }
    }

    /// Starts a successor and waits until it serves; returns its pid. If none took over, this
    /// process still holds the SQLite lock (the successor's copy closed with it) and writes
    /// its pid in it again, over the one the successor may have written.
    pub async fn start_successor(&self) -> Result<u32, HandoverError> {
        let outcome = self.spawn_and_wait().await;
        if let (Err(_), Some(lock)) = (&outcome, &self.lock) {
            // Only the refusal of another host reads it; a stale pid there misleads, no more.
            let _ = lock.claim();
        }
        outcome
    }

    async fn spawn_and_wait(&self) -> Result<u32, HandoverError> {
        let spawn_error = |source| HandoverError::Spawn {
            exe: self.exe.display().to_string(),
            source,
        };
        let (ready_reader, ready_writer) = std::io::pipe().map_err(spawn_error)?;
        let mut child = self
            .command(ready_writer)
            .map_err(spawn_error)?
            .spawn()
            .map_err(spawn_error)?;
        // Our copy of the pipe's write end went with the `Command`: if the successor dies, the
        // read below ends.
        let pid = child.id();
        let mut ready =
            tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(ready_reader))
                .map_err(spawn_error)?;
        // The successor keeps the pipe open while it lives: wait for its line, or for the end
        // of the pipe if it exits first.
        let said_ready = async {
            let mut said = Vec::new();
            let mut chunk = [0u8; 64];
            loop {
                match ready.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => said.extend_from_slice(&chunk[..n]),
                }
                if said.contains(&b'\n') {
                    return said.starts_with(b"ready");
                }
            }
        };
        match tokio::time::timeout(self.ready_timeout, said_ready).await {
            Ok(true) => Ok(pid),
            Ok(false) => {
                let _ = child.kill();
                let status = tokio::task::spawn_blocking(move || child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map_or_else(|| "status unknown".to_owned(), |s| s.to_string());
                Err(HandoverError::Exited(status))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = tokio::task::spawn_blocking(move || child.wait()).await;
                Err(HandoverError::NotReady(self.ready_timeout))
            }
        }
    }

    fn command(&self, ready: std::io::PipeWriter) -> std::io::Result<Command> {
        use command_fds::{CommandFdExt, FdMapping};
        let mut mappings = vec![FdMapping {
            parent_fd: OwnedFd::from(self.client.try_clone()?),
            child_fd: 3,
        }];
        let mut names = vec!["client"];
        if let Some(admin) = &self.admin {
            mappings.push(FdMapping {
                parent_fd: OwnedFd::from(admin.try_clone()?),
                child_fd: 4,
            });
            names.push("admin");
        }
        let ready_fd = 3 + mappings.len() as i32;
        mappings.push(FdMapping {
            parent_fd: OwnedFd::from(ready),
            child_fd: ready_fd,
        });
        let mut command = Command::new(&self.exe);
        match &self.lock {
            Some(lock) => command
                .stdin(Stdio::from(lock.for_successor()?))
                .env(SQLITE_LOCK_FD_VAR, "0"),
            // A variable our own predecessor set must not tell a successor that gets no lock
            // to adopt whatever its stdin is.
            None => command.stdin(Stdio::null()).env_remove(SQLITE_LOCK_FD_VAR),
        };
        command
            .args(&self.args)
            // Systemd's variables name this process; the successor gets its own.
            .env_remove("LISTEN_PID")
            .env("LISTEN_FDS", names.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env(READY_FD_VAR, ready_fd.to_string())
            .env(PREDECESSOR_VAR, std::process::id().to_string());
        command
            .fd_mappings(mappings)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(command)
    }
}

/// Listening sockets passed in by systemd or by a predecessor.
pub struct Inherited {
    pub client: TcpListener,
    pub admin: Option<TcpListener>,
}

/// The listening sockets in `LISTEN_FDS`, if any: named by `LISTEN_FDNAMES` (`client`,
/// `admin`), or else fd 3 is the client's and fd 4 the admin's.
pub fn inherited_listeners() -> std::io::Result<Option<Inherited>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    // Unnamed sockets go by position; named ones by name.
    let index_of = |name: &str, position: usize| {
        if names.is_empty() {
            Some(position)
        } else {
            names.iter().position(|n| n == name)
        }
    };
    let client = match index_of("client", 0) {
        Some(index) => fds.take_tcp_listener(index)?,
        None => None,
    }
    .ok_or_else(|| std::io::Error::other("LISTEN_FDS is set but has no `client` TCP socket"))?;
    let admin = index_of("admin", 1).and_then(|index| fds.take_tcp_listener(index).ok().flatten());
    // The variables stay set (changing the environment of a process with threads is unsound);
    // a successor gets its own from `Handover::command`.
    Ok(Some(Inherited { client, admin }))
}

/// The SQLite lock a predecessor handed over, if it did (`HANDOVER_SQLITE_LOCK_FD=0`): a new
/// descriptor of standard input, of the same open file description as the predecessor's, and
/// so holding the same lock. [`ServingLock::take`] adopts it only if it is the lock of the
/// database this process opens.
///
/// Why standard input: taking ownership of an inherited fd at any other number needs
/// `unsafe` (`OwnedFd::from_raw_fd`), which the host allows only in its loader, while std
/// lends out standard input's safely; and opening `/proc/self/fd/N` (as [`notify_ready`] does
/// for the pipe) would make a new open file description, which does not share the lock. The
/// successor never reads its standard input. Standard input stays open on the lock for the
/// life of the process (std cannot close it either), which only matters if this process
/// then serves another database: it keeps the old one locked until it exits.
pub fn inherited_sqlite_lock() -> Option<File> {
    if std::env::var(SQLITE_LOCK_FD_VAR).ok()? != "0" {
        return None;
    }
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    Some(File::from(fd))
}

/// The process that started this one as its successor (its parent, until it exits), if any.
/// From its own word, not `getppid`: it may have exited already.
pub fn predecessor() -> Option<u32> {
    std::env::var(PREDECESSOR_VAR).ok()?.parse().ok()
}

/// Tells whoever started this process that it serves: systemd (`READY=1` with our pid, so a
/// successor becomes the unit's main process) and a predecessor waiting on its pipe.
pub fn notify_ready() -> std::io::Result<()> {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::MainPid(std::process::id()),
        sd_notify::NotifyState::Ready,
    ]);
    let Ok(fd) = std::env::var(READY_FD_VAR) else {
        return Ok(());
    };
    // Opening the fd's /proc entry gives a new handle on the same pipe without taking
    // ownership of a raw fd number.
    let mut pipe = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))?;
    pipe.write_all(b"ready\n")
}

/// Where restart requests go: each carries where to send the outcome.
#[derive(Clone)]
pub struct RestartRequests(mpsc::Sender<RestartRequest>);

/// A restart request: where to send its outcome (the successor's pid, or why none took over).
pub type RestartRequest = oneshot::Sender<Result<u32, HandoverError>>;

impl RestartRequests {
    /// A channel of restart requests, served by whoever holds the receiver.
    pub fn channel() -> (RestartRequests, mpsc::Receiver<RestartRequest>) {
        let (sender, receiver) = mpsc::channel(4);
        (RestartRequests(sender), receiver)
    }

    /// Asks for a successor and waits for the outcome: its pid, or why none took over.
    pub async fn request(&self) -> Result<u32, HandoverError> {
        let (reply, outcome) = oneshot::channel();
        self.0.send(reply).await.map_err(|_| HandoverError::Busy)?;
        outcome.await.map_err(|_| HandoverError::Busy)?
    }
}
