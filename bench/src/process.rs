//! The servers under test as child processes: the real `game-host` binary with the three demo
//! modules, and the ceiling (`game-bench ceiling`). Each prints `listening on <addr>` once it
//! serves; both are killed when their handle is dropped.

use anyhow::{anyhow, bail, Context};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The demo modules' crates, whose release libraries the host serves.
pub const DEMO_MODULES: [&str; 3] = ["activity", "mall", "player"];

/// What may differ between the hosts of one run; the default is [`Server::host`]'s.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostOptions<'a> {
    /// `store.url` (`postgres://…`, `mysql://…`); `None` is the host's own SQLite.
    pub database_url: Option<&'a str>,
    /// `server.host_id`, the host's name in its logs and metrics.
    pub host_id: Option<&'a str>,
    /// Further settings, as `GAME_HOST_*` environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

/// A server process; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The admin API's address (a host's; the ceiling has none).
    pub admin_addr: Option<SocketAddr>,
    /// Just before the process was spawned.
    pub started: Instant,
    /// From `spawn` to the `listening on` line.
    pub ready_after: std::time::Duration,
    /// The host's folders (plugins, data, logs), removed on drop.
    dirs: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `target/release/game-host` in the prod profile on fresh folders: an empty
    /// database, the demo modules copied into its plugins folder.
    pub fn host(target: &Path, config_dir: &Path) -> anyhow::Result<Server> {
        Server::host_with(target, config_dir, &HostOptions::default())
    }

    /// [`Server::host`] with `options`: another database than its own SQLite, a host id.
    /// Each host gets folders of its own (plugins, data, logs), so several can run at once.
    pub fn host_with(
        target: &Path,
        config_dir: &Path,
        options: &HostOptions<'_>,
    ) -> anyhow::Result<Server> {
        let dirs = tempfile::tempdir()?;
        let plugins = dirs.path().join("plugins");
        std::fs::create_dir_all(&plugins)?;
        for module in DEMO_MODULES {
            let library = target.join(format!("release/lib{module}.so"));
            std::fs::copy(&library, plugins.join(format!("lib{module}.so")))
                .with_context(|| format!("{}: run `make bench`", library.display()))?;
        }
        let stderr = std::fs::File::create(dirs.path().join("stderr.log"))?;
        let mut command = Command::new(target.join("release/game-host"));
        command
            .args(["serve", "--profile", "prod", "--config-dir"])
            .arg(config_dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--plugins-dir")
            .arg(&plugins)
            .arg("--data-dir")
            .arg(dirs.path().join("data"))
            .arg("--log-dir")
            .arg(dirs.path().join("log"))
            .stderr(stderr);
        // The store is the bench's choice, not the environment's: its SQLite unless told.
        // The URL goes by the environment, where other users cannot read it in `ps`.
        command
            .env_remove("GAME_HOST_STORE_URL")
            .env_remove("GAME_HOST_DATABASE_URL");
        // The demo modules are not signed, which the prod profile requires (config/prod.toml,
        // [trust]); signatures cost only at load (host/src/plugins/trust.rs), not per request.
        command.env("GAME_HOST_TRUST_REQUIRE_SIGNATURE", "false");
        if let Some(url) = options.database_url {
            command.env("GAME_HOST_DATABASE_URL", url);
        }
        if let Some(id) = options.host_id {
            command.env("GAME_HOST_SERVER_HOST_ID", id);
        }
        command.envs(options.env.iter().copied());
        let started = Instant::now();
        Server::spawn(command, started, Some(dirs))
    }

    /// Starts the ceiling: this binary's `ceiling` subcommand.
    pub fn ceiling() -> anyhow::Result<Server> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("ceiling").stderr(Stdio::inherit());
        Server::spawn(command, Instant::now(), None)
    }

    fn spawn(
        mut command: Command,
        started: Instant,
        dirs: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Server> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.parse::<SocketAddr>()?;
                    }
                }
                _ => {
                    let _ = child.kill();
                    let why = dirs
                        .as_ref()
                        .and_then(|d| std::fs::read_to_string(d.path().join("stderr.log")).ok())
                        .unwrap_or_default();
                    bail!("{command:?} exited before listening: {why}");
                }
            }
        };
        let ready_after = started.elapsed();
        // A host says where its admin API listens next; the ceiling says nothing more.
        let admin_addr = if dirs.is_some() {
            let line = lines.next().and_then(Result::ok).unwrap_or_default();
            match line
                .strip_prefix("admin listening on ")
                .and_then(|admin| admin.parse::<SocketAddr>().ok())
            {
                Some(admin) => Some(admin),
                None => {
                    let _ = child.kill();
                    bail!("{command:?}: `admin listening on ADDR` expected, not {line:?}");
                }
            }
        } else {
            None
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server {
            child,
            addr,
            admin_addr,
            started,
            ready_after,
            dirs,
        })
    }

    /// A host's plugins folder, where its module libraries are loaded from.
    pub fn plugins_dir(&self) -> Option<PathBuf> {
        self.dirs.as_ref().map(|dirs| dirs.path().join("plugins"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(&format!("/proc/{}/status", self.pid()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a `/proc/<pid>/status` file, in KiB.
pub fn rss_kib(status_file: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(status_file)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in {status_file}"))
}

/// The cargo target folder this binary was built into (`…/target/release/game-bench`).
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .ok_or_else(|| anyhow!("cannot find the target folder from {}", exe.display()))
}

/// Linux reports thread CPU time in clock ticks of 1/100 s (`USER_HZ`, fixed for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system) that each group of process `pid`'s threads has used so far.
/// Threads are grouped by name with a trailing `-N` cut, so that the eight `module-worker-N`
/// count as one. Threads that ended meanwhile are not counted; the servers' threads live for
/// the whole run.
pub fn cpu_seconds_by_thread(pid: u32) -> BTreeMap<String, f64> {
    let mut groups = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return groups;
    };
    for task in tasks.flatten() {
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        let ticks = stat_fields(&stat)
            .skip(11)
            .take(2)
            .filter_map(|field| field.parse::<u64>().ok())
            .sum::<u64>();
        let name = name.trim();
        let group = match name.rsplit_once('-') {
            Some((group, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => group,
            _ => name,
        };
        *groups.entry(group.to_owned()).or_default() += ticks as f64 / TICKS_PER_SECOND;
    }
    groups
}

/// The fields of a `/proc/…/stat` line after the name: `pid (name) state ppid …`, where the
/// name may hold spaces, so fields are counted after its `)`. The state is the first; the
/// parent's pid the second; utime and stime (the 14th and 15th fields) the 12th and 13th.
fn stat_fields(stat: &str) -> impl Iterator<Item = &str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace())
        .into_iter()
        .flatten()
}

/// CPU seconds (user and system) that process `pid` has used so far, its ended threads
/// included; `None` if it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut times = stat_fields(&stat).skip(11).take(2);
    let (utime, stime) = (times.next()?, times.next()?);
    Some((utime.parse::<u64>().ok()? + stime.parse::<u64>().ok()?) as f64 / TICKS_PER_SECOND)
}

/// Every process as `(pid, parent pid, name)`, from `/proc`.
pub fn processes() -> Vec<(u32, u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat_fields(&stat).nth(1)?.parse::<u32>().ok()?;
            let name = stat.split_once('(')?.1.rsplit_once(')')?.0.to_owned();
            Some((pid, ppid, name))
        })
        .collect()
}
