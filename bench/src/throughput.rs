//! HTTP throughput, latency and memory: the ceiling and the three workloads, in rounds.
//!
//! Each round runs the ceiling, then `read`, `write` and `mixed` on one host process, one
//! after the other, so that a noisy moment of the machine hits one round of everything rather
//! than all rounds of one thing; the report takes medians across rounds.

use crate::load::{self, LoadRun, Shape, Workload};
use crate::process::{cpu_seconds_by_thread, Ceiling, Server};
use crate::stats::median;
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
    // The ceiling checks only that a token is there.
    let ceiling_tokens = Arc::new(vec!["ceiling".to_owned(); players]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle_kib = host.rss_kib()?;
    let mut ceiling = Row::new("ceiling");
    let mut workloads: Vec<Row> = Workload::ALL.iter().map(|w| Row::new(w.name())).collect();
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
    }
    Ok(HttpFigures {
        shape,
        players,
        rounds,
        ceiling,
        workloads,
        rss_idle_kib,
        rss_mixed_peak_kib: peak.load(Ordering::Relaxed),
    })
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
