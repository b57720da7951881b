//! A real `game-host serve` process: the command line that puts it on [`Folders`] with both
//! listeners on ports the system picks, and [`Served`], the running process, known by the two
//! lines it prints once it serves (`listening on ADDR`, then `admin listening on ADDR`).
//! It is killed when the value is dropped.

use crate::Folders;
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

/// `binary serve` with the profiles of `config_dir`, on `folders`, both listeners on
/// `127.0.0.1:0`; stdout piped (for [`Served::start`]), stderr discarded: a host that outlives
/// a failed test must not hold the test runner's output open. What the host says is in its log
/// files; a caller that wants its stderr sets it.
pub fn serve_command(binary: &Path, config_dir: &Path, folders: &Folders) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--plugins-dir")
        .arg(folders.plugins())
        .arg("--data-dir")
        .arg(folders.data())
        .arg("--log-dir")
        .arg(folders.log())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// A running `game-host serve`; killed (SIGKILL) and reaped when dropped.
pub struct Served {
    pub child: Child,
    /// Its stdout after the two lines (a successor's lines, after a restart).
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// When its `listening on` line was read: it serves from then on.
    pub listening_at: Instant,
}

impl Served {
    /// Spawns `command` (a `serve`, stdout piped) and waits until it says where it listens.
    /// A process that exits first, or says something else, is killed and is the error.
    pub fn start(mut command: Command) -> anyhow::Result<Served> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout).lines();
        let announced = announced(&mut stdout, "listening on ").and_then(|addr| {
            let listening_at = Instant::now();
            let admin_addr = announced(&mut stdout, "admin listening on ")?;
            Ok((addr, admin_addr, listening_at))
        });
        match announced {
            Ok((addr, admin_addr, listening_at)) => Ok(Served {
                child,
                stdout,
                addr,
                admin_addr,
                listening_at,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.context(format!("{command:?}")))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`-TERM`, `-USR2`, ...) with `kill`; panics if it cannot.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Kills the process with SIGKILL, as a crash would: no shutdown path runs, nothing is
    /// flushed or checkpointed. Returns once it is reaped; panics if something else ended it.
    pub fn crash(mut self) {
        self.signal("-KILL");
        let status = self.child.wait().expect("wait for the killed host");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().expect("wait for the host").code()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `name` to process `pid` (not necessarily a child) with `kill`; panics if
/// `kill` fails.
pub fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {name} {pid}");
}

/// The address on the next line of `stdout`, which must be `prefix` and an address.
fn announced(
    stdout: &mut Lines<BufReader<ChildStdout>>,
    prefix: &str,
) -> anyhow::Result<SocketAddr> {
    let line = match stdout.next() {
        Some(line) => line.context("reading its stdout")?,
        None => bail!("it exited before saying `{prefix}ADDR`"),
    };
    line.strip_prefix(prefix)
        .and_then(|addr| addr.parse().ok())
        .with_context(|| format!("it said {line:?}, not `{prefix}ADDR`"))
}
