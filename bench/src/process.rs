//! The servers under test as child processes: the real `game-host` binary with the three demo
//! modules, started as the tests start it ([`testkit::served`] on [`testkit::Folders`]), and
//! the ceiling (`game-bench ceiling`). Each prints `listening on <addr>` once it serves; both
//! are killed when their handle is dropped. Also what the sections read of processes in
//! `/proc`: memory and CPU time.

use anyhow::{anyhow, bail, Context};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::served::{serve_command, Served};
use testkit::{Folders, DEMO_MODULES};

/// What to do when a binary or library of the build is missing.
const BUILD_FIRST: &str = "build it first: `make bench` (release) or `make soak` (debug) do";

/// What may differ between the hosts of one run; the default is [`Server::host`]'s.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostOptions<'a> {
    /// `store.url` (`postgres://…`, `mysql://…`); `None` is the host's own SQLite.
    pub database_url: Option<&'a str>,
    /// `server.host_id`, the host's name in its logs and metrics.
    pub host_id: Option<&'a str>,
    /// Further settings, as `GAME_HOST_*` environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// No profile: `config/default.toml` alone, as a host started without `--profile` runs
    /// (its access lines go to stderr at `info` too), instead of the prod profile.
    pub default_profile: bool,
}

/// A `game-host` process on folders of its own (plugins, data, logs); killed on drop, then
/// its folders removed.
pub struct Server {
    served: Served,
    folders: Folders,
    pub addr: SocketAddr,
    /// The admin API's address.
    pub admin_addr: SocketAddr,
    /// Just before the process was spawned.
    pub started: Instant,
    /// From `spawn` to the `listening on` line.
    pub ready_after: Duration,
}

impl Server {
    /// Starts `game-host` of `build` (the folder of a build's binaries: `target/release`) in
    /// the prod profile (unless [`HostOptions::default_profile`]) on fresh folders: an empty database, the demo modules copied into its
    /// plugins folder.
    pub fn host(build: &Path, config_dir: &Path) -> anyhow::Result<Server> {
        Server::host_with(build, config_dir, &HostOptions::default())
    }

    /// [`Server::host`] with `options`: another database than its own SQLite, a host id.
    /// Each host gets folders of its own, so several can run at once.
    pub fn host_with(
        build: &Path,
        config_dir: &Path,
        options: &HostOptions<'_>,
    ) -> anyhow::Result<Server> {
        let folders = Folders::new()?;
        for module in DEMO_MODULES {
            let library = build.join(format!("lib{module}.so"));
            folders
                .install(&library)
                .with_context(|| format!("{}: {BUILD_FIRST}", library.display()))?;
        }
        let stderr_log = folders.root.path().join("stderr.log");
        let mut command = serve_command(&build.join("game-host"), config_dir, &folders);
        if !options.default_profile {
            command.args(["--profile", "prod"]);
        }
        command.stderr(std::fs::File::create(&stderr_log)?);
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
        // After its two lines the host writes nothing more to stdout, so the pipe never fills.
        let served = Served::start(command).map_err(|e| {
            let said = std::fs::read_to_string(&stderr_log).unwrap_or_default();
            anyhow!("{e:#}; its stderr: {said}")
        })?;
        Ok(Server {
            addr: served.addr,
            admin_addr: served.admin_addr,
            ready_after: served.listening_at - started,
            started,
            served,
            folders,
        })
    }

    /// The host's plugins folder, where its module libraries are loaded from.
    pub fn plugins_dir(&self) -> PathBuf {
        self.folders.plugins()
    }

    pub fn pid(&self) -> u32 {
        self.served.pid()
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(&format!("/proc/{}/status", self.pid()))
    }
}

/// The ceiling: this binary's `ceiling` subcommand, in a process of its own; killed on drop.
pub struct Ceiling {
    child: Child,
    pub addr: SocketAddr,
}

impl Ceiling {
    pub fn start() -> anyhow::Result<Ceiling> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("ceiling")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
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
                    bail!("{command:?} exited before listening");
                }
            }
        };
        // Keep reading stdout so the ceiling never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Ceiling { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder of this build's binaries and libraries: `target/release` for `game-bench`;
/// `target/debug` for its tests, which run from `deps/` below it.
pub fn build_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("cannot find the build folder from {}", exe.display()))?;
    Ok(match dir.parent() {
        Some(profile) if dir.ends_with("deps") => profile.to_owned(),
        _ => dir.to_owned(),
    })
}

/// A setting as the hosts read it: `game-host config` in their profile (prod), with this
/// environment applied, the value of `key` in `[section]` as TOML writes it (a string keeps
/// its quotes). `None` if it cannot be read.
pub fn host_setting(build: &Path, config_dir: &Path, section: &str, key: &str) -> Option<String> {
    host_section(build, config_dir, section)?.remove(key)
}

/// Every setting of `[section]` as [`host_setting`] reads one, from one `game-host config`.
pub fn host_section(
    build: &Path,
    config_dir: &Path,
    section: &str,
) -> Option<BTreeMap<String, String>> {
    let output = Command::new(build.join("game-host"))
        .args(["config", "--profile", "prod", "--config-dir"])
        .arg(config_dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut settings = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == header;
        } else if let Some((name, value)) = line.split_once('=').filter(|_| in_section) {
            settings.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    Some(settings)
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

/// Linux reports thread CPU time in clock ticks of 1/100 s (`USER_HZ`, fixed for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system) that each group of process `pid`'s threads has used so far.
/// Threads are grouped by name with a trailing `-N` cut, so that the `module-worker-N` threads
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
