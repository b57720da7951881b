//! Server stores: the `read`, `write` and `mixed` workloads on one host per store (SQLite,
//! PostgreSQL, MariaDB), and on two hosts behind nginx sharing one PostgreSQL or MariaDB
//! database, with the CPU of every process involved.
//!
//! Each server run gets a scratch database of its own (`CREATE DATABASE game_bench_<pid>_…`,
//! [`testkit::scratch`], as the tests make theirs), dropped at the end of that run whatever
//! happened (the hosts are stopped first). A database server that does not answer skips its
//! rows, saying why; the rest still runs. The servers' admin URLs: `GAME_BENCH_POSTGRES` and
//! `GAME_BENCH_MYSQL` (`off` skips one); unset, `postgres://postgres@127.0.0.1:5432/postgres`
//! and `mysql://root@127.0.0.1:3306/mysql`.
//!
//! nginx runs the production example as written ([`testkit::nginx`]), its upstream the two
//! hosts; `NGINX` names the binary if it is not in `/usr/sbin`.
//!
//! Length: one section over three stores and two topologies (one host, two behind nginx), with the
//! setup each needs; the shared parts are in testkit.

use crate::load::{self, Shape, Workload};
use crate::process::{self, HostOptions, Server};
use crate::throughput::{CpuUse, Row};
use anyhow::{bail, Context};
use sqlx::{AnyConnection, Connection};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use testkit::nginx::{self, Nginx};
use testkit::scratch::{DatabaseServer, ScratchDatabase, ScratchError};

/// Which store the hosts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
    MariaDb,
}

impl Database {
    pub fn name(self) -> &'static str {
        match self {
            Database::Sqlite => "SQLite",
            Database::Postgres => "PostgreSQL",
            Database::MariaDb => "MariaDB",
        }
    }

    /// The database server behind it; SQLite has none.
    pub fn server(self) -> Option<DatabaseServer> {
        match self {
            Database::Sqlite => None,
            Database::Postgres => Some(DatabaseServer::Postgres),
            Database::MariaDb => Some(DatabaseServer::MySql),
        }
    }
}

/// One configuration: a store, and how many hosts share it (more than one: behind nginx).
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub database: Database,
    pub hosts: usize,
}

impl Setup {
    pub fn name(&self) -> String {
        match self.hosts {
            1 => format!("{}, 1 host", self.database.name()),
            n => format!("{}, {n} hosts behind nginx", self.database.name()),
        }
    }

    /// The scratch database's name: `game_bench_<pid>_<setup>`.
    fn scratch_name(&self) -> String {
        let database = match self.database {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
            Database::MariaDb => "mariadb",
        };
        format!(
            "game_bench_{}_{database}_{}",
            std::process::id(),
            self.hosts
        )
    }
}

/// nginx's worker processes: one per core of the machine the figures come from.
pub const NGINX_WORKERS: usize = 2;

pub const SETUPS: [Setup; 5] = [
    Setup {
        database: Database::Sqlite,
        hosts: 1,
    },
    Setup {
        database: Database::Postgres,
        hosts: 1,
    },
    Setup {
        database: Database::MariaDb,
        hosts: 1,
    },
    Setup {
        database: Database::Postgres,
        hosts: 2,
    },
    Setup {
        database: Database::MariaDb,
        hosts: 2,
    },
];

/// How one setup went.
#[derive(Debug)]
pub enum Outcome {
    /// One row per workload.
    Measured(Vec<StoreRow>),
    /// Not run, and why (a database server that does not answer, no nginx).
    Skipped(String),
    /// Started, but could not be measured, and why.
    Failed(String),
}

/// One workload on one setup: the load's figures and the host threads' CPU (summed over the
/// hosts) in `row`, plus the CPU of the other processes in the measured windows.
#[derive(Debug)]
pub struct StoreRow {
    pub row: Row,
    /// The database server's processes (none for SQLite, which runs in the host).
    pub database_cpu: f64,
    /// nginx's master and workers.
    pub nginx_cpu: f64,
}

#[derive(Debug)]
pub struct SetupFigures {
    pub setup: Setup,
    pub outcome: Outcome,
}

/// What the stores section measured.
#[derive(Debug)]
pub struct StoresFigures {
    pub shape: Shape,
    pub players: usize,
    pub rounds: usize,
    /// `store.pool_size` as the hosts read it (`game-host config`), if it could be read.
    pub pool_size: Option<u32>,
    /// `store.batch_readers` and `store.batch_writers`, read as `pool_size` is.
    pub batches: Option<(u32, u32)>,
    pub setups: Vec<SetupFigures>,
}

impl StoresFigures {
    /// The measured setup with the lowest throughput (mean of its workloads' medians).
    pub fn slowest(&self) -> Option<(&Setup, &[StoreRow])> {
        self.setups
            .iter()
            .filter_map(|s| match &s.outcome {
                Outcome::Measured(rows) if !rows.is_empty() => Some((&s.setup, rows.as_slice())),
                _ => None,
            })
            .min_by(|(_, a), (_, b)| mean_throughput(a).total_cmp(&mean_throughput(b)))
    }
}

fn mean_throughput(rows: &[StoreRow]) -> f64 {
    rows.iter().map(|r| r.row.throughput()).sum::<f64>() / rows.len().max(1) as f64
}

/// What one run needs to know, the same for every setup.
struct Bench<'a> {
    build: &'a Path,
    config_dir: &'a Path,
    shape: Shape,
    players: usize,
    rounds: usize,
}

pub async fn run(
    build: &Path,
    config_dir: &Path,
    shape: Shape,
    players: usize,
    rounds: usize,
) -> anyhow::Result<StoresFigures> {
    let cx = Bench {
        build,
        config_dir,
        shape,
        players,
        rounds,
    };
    let mut setups = Vec::new();
    for setup in SETUPS {
        // Ctrl-C (which the hosts and nginx get too) ends the section through the same path
        // as an error, so that the scratch database is still dropped.
        let outcome = tokio::select! {
            outcome = measure_setup(&cx, setup) => outcome,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        match &outcome {
            Outcome::Skipped(why) => eprintln!("stores: SKIPPED the {} rows: {why}", setup.name()),
            Outcome::Failed(why) => eprintln!("stores: FAILED {}: {why}", setup.name()),
            Outcome::Measured(_) => {}
        }
        setups.push(SetupFigures { setup, outcome });
    }
    let store = process::host_section(build, config_dir, "store");
    let store_setting = |key: &str| -> Option<u32> { store.as_ref()?.get(key)?.parse().ok() };
    Ok(StoresFigures {
        shape,
        players,
        rounds,
        pool_size: store_setting("pool_size"),
        batches: store_setting("batch_readers").zip(store_setting("batch_writers")),
        setups,
    })
}

async fn measure_setup(cx: &Bench<'_>, setup: Setup) -> Outcome {
    let nginx = if setup.hosts > 1 {
        match nginx::find() {
            Some(nginx) => Some(nginx),
            None => return Outcome::Skipped(nginx::MISSING.into()),
        }
    } else {
        None
    };
    let scratch = match setup.database.server() {
        None => None,
        Some(server) => {
            let admin = match server.admin_url("GAME_BENCH") {
                Ok(admin) => admin,
                Err(why) => return Outcome::Skipped(why),
            };
            match Scratch::create(&admin, &setup.scratch_name()).await {
                Ok(scratch) => Some(scratch),
                Err(why) => return Outcome::Skipped(why.to_string()),
            }
        }
    };
    // The hosts and nginx are stopped when this returns, before `scratch` is dropped.
    let measured = measure_hosts(cx, setup, scratch.as_ref(), nginx.as_deref()).await;
    drop(scratch);
    match measured {
        Ok(rows) => Outcome::Measured(rows),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

async fn measure_hosts(
    cx: &Bench<'_>,
    setup: Setup,
    scratch: Option<&Scratch>,
    nginx_binary: Option<&Path>,
) -> anyhow::Result<Vec<StoreRow>> {
    let name = setup.name();
    match scratch {
        Some(s) => {
            let server = match s.server_pid {
                Some(pid) => format!("server process {pid}"),
                None => "server process not found: counted by name".into(),
            };
            eprintln!(
                "stores: {name}: starting, on {} ({server})",
                s.database.name()
            );
        }
        None => eprintln!("stores: {name}: starting"),
    }
    let mut hosts = Vec::new();
    for n in 0..setup.hosts {
        let host_id = format!("bench-{}", (b'a' + n as u8) as char);
        let options = HostOptions {
            database_url: scratch.map(|s| s.database.url()),
            host_id: Some(&host_id),
            ..HostOptions::default()
        };
        hosts.push(Server::host_with(cx.build, cx.config_dir, &options)?);
    }
    let nginx = match nginx_binary {
        Some(binary) => {
            let upstreams: Vec<SocketAddr> = hosts.iter().map(|h| h.addr).collect();
            Some(Nginx::start(
                binary,
                cx.config_dir,
                &upstreams,
                NGINX_WORKERS,
            )?)
        }
        None => None,
    };
    let front = nginx.as_ref().map_or(hosts[0].addr, |n| n.addr);
    let tokens = Arc::new(
        load::login_players(front, cx.players)
            .await
            .context("logging the players in")?,
    );
    let watched = Watched {
        hosts: hosts.iter().map(Server::pid).collect(),
        nginx: nginx.as_ref().map(Nginx::pid),
        database: setup.database,
        server: scratch.and_then(|s| s.server_pid),
        scratch: scratch.map(|s| s.database.name().to_owned()),
    };
    let mut rows: Vec<StoreRow> = Workload::STORES
        .iter()
        .map(|w| StoreRow {
            row: Row {
                name: w.name(),
                runs: Vec::new(),
                cpu: CpuUse::default(),
            },
            database_cpu: 0.0,
            nginx_cpu: 0.0,
        })
        .collect();
    for round in 1..=cx.rounds {
        for (workload, row) in Workload::STORES.into_iter().zip(&mut rows) {
            eprintln!(
                "stores: {name}: round {round}/{}: {}",
                cx.rounds,
                workload.name()
            );
            let load = load::run(front, workload, tokens.clone(), cx.shape);
            let watch = async {
                tokio::time::sleep(cx.shape.warmup).await;
                let before = watched.snapshot();
                tokio::time::sleep(cx.shape.measure).await;
                watched.snapshot().minus(&before)
            };
            let (run, cpu) = tokio::join!(load, watch);
            row.row.runs.push(run);
            for (group, seconds) in cpu.host {
                *row.row.cpu.server.entry(group).or_default() += seconds;
            }
            row.row.cpu.generator += cpu.generator;
            row.database_cpu += cpu.database;
            row.nginx_cpu += cpu.nginx;
        }
    }
    drop(nginx);
    drop(hosts);
    Ok(rows)
}

/// The processes whose CPU a run counts.
struct Watched {
    hosts: Vec<u32>,
    /// nginx's master; its workers are its children.
    nginx: Option<u32>,
    database: Database,
    /// The database server's process (PostgreSQL's postmaster), if it could be found.
    server: Option<u32>,
    /// The run's database on a server: other databases' PostgreSQL backends are not counted.
    scratch: Option<String>,
}

/// CPU seconds used so far: the hosts' by thread group, the others' by process.
struct Snapshot {
    host: BTreeMap<String, f64>,
    database: BTreeMap<u32, f64>,
    nginx: BTreeMap<u32, f64>,
    generator: f64,
}

/// CPU seconds used between two snapshots.
struct Delta {
    host: BTreeMap<String, f64>,
    database: f64,
    nginx: f64,
    generator: f64,
}

impl Watched {
    fn snapshot(&self) -> Snapshot {
        let mut host = BTreeMap::new();
        for pid in &self.hosts {
            for (group, seconds) in process::cpu_seconds_by_thread(*pid) {
                *host.entry(group).or_default() += seconds;
            }
        }
        let all = process::processes();
        let database_pids: Vec<u32> = all
            .iter()
            .filter(|(pid, ppid, name)| self.is_database(*pid, *ppid, name))
            .map(|(pid, _, _)| *pid)
            .collect();
        let nginx_pids: Vec<u32> = self
            .nginx
            .into_iter()
            .flat_map(|master| {
                std::iter::once(master).chain(
                    all.iter()
                        .filter(move |(_, ppid, _)| *ppid == master)
                        .map(|(pid, _, _)| *pid),
                )
            })
            .collect();
        let cpu = |pids: Vec<u32>| -> BTreeMap<u32, f64> {
            pids.into_iter()
                .filter_map(|pid| Some((pid, process::process_cpu_seconds(pid)?)))
                .collect()
        };
        Snapshot {
            host,
            database: cpu(database_pids),
            nginx: cpu(nginx_pids),
            generator: process::cpu_seconds_by_thread(std::process::id())
                .values()
                .sum(),
        }
    }

    /// Whether process `pid` (parent `ppid`, called `name`) is the database server's and
    /// counts for this run: `mariadbd` (one process); PostgreSQL's postmaster, its shared
    /// processes and this database's backends, not other databases' (tests may use the same
    /// server meanwhile). When the server's pid is unknown, any process of the server's name.
    fn is_database(&self, pid: u32, ppid: u32, name: &str) -> bool {
        match self.database {
            Database::Sqlite => false,
            Database::MariaDb => match self.server {
                Some(server) => pid == server,
                None => name == "mariadbd" || name == "mysqld",
            },
            Database::Postgres => {
                let of_server = match self.server {
                    Some(postmaster) => pid == postmaster || ppid == postmaster,
                    None => name == "postgres",
                };
                if !of_server || Some(pid) == self.server {
                    return of_server;
                }
                let Ok(title) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let title = String::from_utf8_lossy(&title).replace('\0', " ");
                let ours = self
                    .scratch
                    .as_deref()
                    .is_some_and(|ours| title.split_whitespace().any(|word| word == ours));
                ours || !is_postgres_backend(&title)
            }
        }
    }
}

/// Whether a PostgreSQL process title is a session's backend or an autovacuum worker (those
/// name their database): `postgres: 15/main: USER DB 127.0.0.1(5555) idle`, `… [local] …`.
fn is_postgres_backend(title: &str) -> bool {
    title.contains("[local]")
        || title.contains("autovacuum worker")
        || title.split_whitespace().any(|word| {
            word.strip_suffix(')')
                .and_then(|w| w.rsplit_once('('))
                .is_some_and(|(host, port)| {
                    !host.is_empty() && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
                })
        })
}

impl Snapshot {
    fn minus(self, before: &Snapshot) -> Delta {
        let processes = |after: &BTreeMap<u32, f64>, before: &BTreeMap<u32, f64>| -> f64 {
            after
                .iter()
                .map(|(pid, seconds)| {
                    (seconds - before.get(pid).copied().unwrap_or_default()).max(0.0)
                })
                .sum()
        };
        Delta {
            host: self
                .host
                .iter()
                .map(|(group, seconds)| {
                    let earlier = before.host.get(group).copied().unwrap_or_default();
                    (group.clone(), seconds - earlier)
                })
                .collect(),
            database: processes(&self.database, &before.database),
            nginx: processes(&self.nginx, &before.nginx),
            generator: self.generator - before.generator,
        }
    }
}

/// A scratch database on a server ([`ScratchDatabase`]: dropped with this value), and the
/// server's process.
struct Scratch {
    database: ScratchDatabase,
    /// The server's process on this machine (PostgreSQL's postmaster, `mariadbd`), if found.
    server_pid: Option<u32>,
}

impl Scratch {
    async fn create(admin: &str, name: &str) -> Result<Scratch, ScratchError> {
        let database = ScratchDatabase::create(admin, name).await?;
        let server_pid = server_pid(admin).await;
        Ok(Scratch {
            database,
            server_pid,
        })
    }
}

/// The database server's process, asked through a connection to `admin`: PostgreSQL's
/// postmaster (the parent of this session's backend), MariaDB's from its pid file. `None` if it
/// is not on this machine or cannot be told.
async fn server_pid(admin: &str) -> Option<u32> {
    let mut conn = AnyConnection::connect(admin).await.ok()?;
    let pid = if admin.starts_with("postgres") {
        let backend: Option<i32> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .ok();
        backend.and_then(|backend| {
            process::processes()
                .into_iter()
                .find(|(pid, _, name)| *pid == backend as u32 && name == "postgres")
                .map(|(_, ppid, _)| ppid)
        })
    } else {
        let file: Option<String> = sqlx::query_scalar("SELECT @@pid_file")
            .fetch_one(&mut conn)
            .await
            .ok();
        file.and_then(|file| {
            let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            matches!(name.trim(), "mariadbd" | "mysqld").then_some(pid)
        })
    };
    let _ = conn.close().await;
    pid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_backends_are_told_from_shared_processes() {
        for backend in [
            "postgres: 15/main: postgres game_bench_1_postgres_1 127.0.0.1(60596) idle",
            "postgres: 15/main: postgres other [local] SELECT",
            "postgres: 15/main: autovacuum worker other",
        ] {
            assert!(is_postgres_backend(backend), "{backend}");
        }
        for shared in [
            "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main",
            "postgres: 15/main: checkpointer",
            "postgres: 15/main: walwriter",
            "postgres: 15/main: logical replication launcher",
        ] {
            assert!(!is_postgres_backend(shared), "{shared}");
        }
    }
}
