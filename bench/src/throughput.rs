//! HTTP throughput, latency and memory: the ceiling and the three workloads, in rounds, with
//! our generator and with wrk.
//!
//! Each round runs the ceiling, then `read`, `write` and `mixed` on one host process, one
//! after the other, then `read` on a second host in the default profile (no `--profile`:
//! access lines to stderr too), then the same four with wrk (when installed), so that a noisy
//! moment of the machine hits one round of everything rather than all rounds of one thing;
//! the report takes medians across rounds.

use crate::load::{self, LoadRun, Shape, Workload};
use crate::process::{cpu_seconds_by_thread, Ceiling, HostOptions, Server};
use crate::stats::median;
use crate::wrk::{self, WrkFigures, WrkRow};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One line of the table: what it is, and its runs (one per round).
#[derive(Debug)]
pub struct Row {
    pub name: &'static str,
    pub runs: Vec<LoadRun>,
    /// CPU used during the measured windows of all rounds.
    pub cpu: CpuUse,
}

/// CPU seconds used while requests were measured: the server's, by thread group, and the
/// generator's (this process).
#[derive(Debug, Default)]
pub struct CpuUse {
    pub server: BTreeMap<String, f64>,
    pub generator: f64,
}

impl CpuUse {
    fn add(&mut self, other: CpuUse) {
        for (group, seconds) in other.server {
            *self.server.entry(group).or_default() += seconds;
        }
        self.generator += other.generator;
    }

    pub fn server_total(&self) -> f64 {
        self.server.values().sum()
    }
}

impl Row {
    pub fn throughput(&self) -> f64 {
        median(self.runs.iter().map(LoadRun::throughput))
    }
    pub fn latency_ms(&self, percentile: f64) -> f64 {
        median(self.runs.iter().map(|r| r.latency_ms(percentile)))
    }
    /// A count summed over the rounds.
    pub fn total(&self, count: impl Fn(&LoadRun) -> u64) -> u64 {
        self.runs.iter().map(count).sum()
    }
    /// Microseconds of CPU per measured request: `seconds` over all rounds' requests.
    pub fn micros_per_request(&self, seconds: f64) -> f64 {
        seconds * 1e6 / self.total(|r| r.requests).max(1) as f64
    }

    fn new(name: &'static str) -> Row {
        Row {
            name,
            runs: Vec::new(),
            cpu: CpuUse::default(),
        }
    }

    /// Runs `load` against the server `pid` and records it with the CPU used in its
    /// measured window (after the warm-up).
    async fn record(&mut self, pid: u32, shape: Shape, load: impl Future<Output = LoadRun>) {
        let watch = async {
            tokio::time::sleep(shape.warmup).await;
            let before = snapshot(pid);
            tokio::time::sleep(shape.measure).await;
            let after = snapshot(pid);
            after.minus(&before)
        };
        let (run, cpu) = tokio::join!(load, watch);
        self.runs.push(run);
        self.cpu.add(cpu);
    }
}

fn snapshot(server: u32) -> CpuUse {
    CpuUse {
        server: cpu_seconds_by_thread(server),
        generator: cpu_seconds_by_thread(std::process::id()).values().sum(),
    }
}

impl CpuUse {
    fn minus(mut self, before: &CpuUse) -> CpuUse {
        for (group, seconds) in &mut self.server {
            *seconds -= before.server.get(group).copied().unwrap_or_default();
        }
        self.generator -= before.generator;
        self
    }
}

/// What the HTTP section measured.
#[derive(Debug)]
pub struct HttpFigures {
    pub shape: Shape,
    pub players: usize,
    pub rounds: usize,
    pub ceiling: Row,
    pub workloads: Vec<Row>,
    /// `read` on a host in the default profile, to compare with the prod profile's `read`.
    pub default_read: Row,
    /// The ceiling and the workloads measured with wrk.
    pub wrk: WrkFigures,
    /// Host RSS after start-up and logging the players in, before any load.
    pub rss_idle_kib: u64,
    /// Highest host RSS sampled (every 100 ms) during the `mixed` runs.
    pub rss_mixed_peak_kib: u64,
}

pub async fn run(
    build: &Path,
    config_dir: &Path,
    shape: Shape,
    players: usize,
    rounds: usize,
) -> anyhow::Result<HttpFigures> {
    let ceiling_server = Ceiling::start()?;
    let host = Server::host(build, config_dir)?;
    let tokens = Arc::new(load::login_players(host.addr, players).await?);
    let default_options = HostOptions {
        default_profile: true,
        ..HostOptions::default()
    };
    let default_host = Server::host_with(build, config_dir, &default_options)?;
    let default_tokens = Arc::new(load::login_players(default_host.addr, players).await?);
    // The ceiling checks only that a token is there.
    let ceiling_tokens = Arc::new(vec!["ceiling".to_owned(); players]);
    let wrk = WrkPart::start(shape, &tokens, &ceiling_tokens)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle_kib = host.rss_kib()?;
    let mut ceiling = Row::new("ceiling");
    let mut workloads: Vec<Row> = Workload::ALL.iter().map(|w| Row::new(w.name())).collect();
    let mut default_read = Row::new("read, default profile");
    let mut wrk_rows = WrkRows::new();
    let peak = Arc::new(AtomicU64::new(0));
    for round in 1..=rounds {
        eprintln!("http round {round}/{rounds}: ceiling");
        let load = load::run(
            ceiling_server.addr,
            Workload::Read,
            ceiling_tokens.clone(),
            shape,
        );
        ceiling.record(ceiling_server.pid(), shape, load).await;
        for (workload, row) in Workload::ALL.into_iter().zip(&mut workloads) {
            eprintln!("http round {round}/{rounds}: {}", workload.name());
            let sampler =
                (workload == Workload::Mixed).then(|| sample_rss(host.pid(), peak.clone()));
            let load = load::run(host.addr, workload, tokens.clone(), shape);
            row.record(host.pid(), shape, load).await;
            if let Some(sampler) = sampler {
                sampler.abort();
            }
        }
        eprintln!("http round {round}/{rounds}: read, default profile");
        let load = load::run(
            default_host.addr,
            Workload::Read,
            default_tokens.clone(),
            shape,
        );
        default_read.record(default_host.pid(), shape, load).await;
        if let Some(wrk) = &wrk {
            eprintln!("http round {round}/{rounds}: wrk");
            wrk.round(
                &mut wrk_rows,
                ceiling_server.addr,
                ceiling_server.pid(),
                &host,
            )
            .await?;
        }
    }
    Ok(HttpFigures {
        shape,
        players,
        rounds,
        ceiling,
        workloads,
        default_read,
        wrk: match wrk {
            Some(_) => WrkFigures::Measured {
                ceiling: wrk_rows.ceiling,
                workloads: wrk_rows.workloads,
            },
            None => WrkFigures::Missing(wrk::INSTALL),
        },
        rss_idle_kib,
        rss_mixed_peak_kib: peak.load(Ordering::Relaxed),
    })
}

/// wrk and its scripts: the ceiling's (`read` with a placeholder token) and each workload's.
struct WrkPart {
    session: wrk::Session,
    ceiling: std::path::PathBuf,
    workloads: Vec<std::path::PathBuf>,
}

/// The wrk table as it fills, round by round.
struct WrkRows {
    ceiling: WrkRow,
    workloads: Vec<WrkRow>,
}

impl WrkRows {
    fn new() -> WrkRows {
        WrkRows {
            ceiling: WrkRow::new("ceiling"),
            workloads: Workload::ALL
                .iter()
                .map(|w| WrkRow::new(w.name()))
                .collect(),
        }
    }
}

impl WrkPart {
    /// `None` when wrk is not installed.
    fn start(
        shape: Shape,
        tokens: &[String],
        ceiling_tokens: &[String],
    ) -> anyhow::Result<Option<WrkPart>> {
        let Some(session) = wrk::Session::start(shape.connections, shape.measure)? else {
            eprintln!("http: no wrk: {}", wrk::INSTALL);
            return Ok(None);
        };
        let ceiling = session.script("ceiling", Workload::Read, ceiling_tokens)?;
        let workloads = Workload::ALL
            .iter()
            .map(|w| session.script(w.name(), *w, tokens))
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(WrkPart {
            session,
            ceiling,
            workloads,
        }))
    }

    /// One round: the ceiling, then each workload on `host`.
    async fn round(
        &self,
        rows: &mut WrkRows,
        ceiling: std::net::SocketAddr,
        ceiling_pid: u32,
        host: &Server,
    ) -> anyhow::Result<()> {
        let session = &self.session;
        session
            .record(&mut rows.ceiling, ceiling, ceiling_pid, &self.ceiling)
            .await?;
        for (script, row) in self.workloads.iter().zip(&mut rows.workloads) {
            session.record(row, host.addr, host.pid(), script).await?;
        }
        Ok(())
    }
}

/// Samples process `pid`'s RSS every 100 ms into `peak` until aborted.
pub fn sample_rss(pid: u32, peak: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let status = format!("/proc/{pid}/status");
    tokio::spawn(async move {
        loop {
            if let Ok(kib) = crate::process::rss_kib(&status) {
                peak.fetch_max(kib, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
