//! Hot-swap figures, on the real host running in this process with module `swap` (the test
//! builds "a" and "b" of `host/tests/plugins/swap-*`) and real HTTP:
//!
//! 1. reload latency: from the library landing in the plugins directory (a rename) to the
//!    first reply by the new version, through the watcher (debounce 20 ms);
//! 2. failed requests while reloading under load (8 clients), reloads per second;
//! 3. RSS and memory-map count of this process at start and at each checkpoint.
//!
//! In process rather than a child: step 2 drives the registry directly (no debounce), which
//! is what lets 10,000 reloads fit in a minute; RSS therefore includes the load clients.

use crate::load::Connection;
use crate::stats::percentile;
use host::plugins::Change;
use host::Deps;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::in_process::InProcessHost;
use testkit::Folders;

/// What the reload section measured.
#[derive(Debug)]
pub struct ReloadFigures {
    pub latency_reloads: usize,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub start: Memory,
    pub checkpoints: Vec<Checkpoint>,
}

/// Memory of this process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub maps: usize,
}

impl Memory {
    fn now() -> Memory {
        let rss_kib = crate::process::rss_kib("/proc/self/status").unwrap_or(0);
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map(|m| m.lines().count())
            .unwrap_or(0);
        Memory { rss_kib, maps }
    }
}

/// The state after `reloads` reloads under load.
#[derive(Debug)]
pub struct Checkpoint {
    pub reloads: usize,
    pub memory: Memory,
    pub retired: u64,
    pub not_unloaded: usize,
    pub served: u64,
    pub failed: u64,
    pub reloads_per_sec: f64,
}

/// Runs both parts: `latency_reloads` timed reloads, then reloads under load up to each
/// checkpoint.
pub async fn run(
    build: &Path,
    latency_reloads: usize,
    checkpoints: &[usize],
) -> anyhow::Result<ReloadFigures> {
    // The first part's host stays up, idle, while the second is measured: it is part of the
    // second part's baseline rather than memory given back in the middle of it.
    let mut first = Bench::start(build, true).await?;
    let (p50, p99) = latency(&first, latency_reloads).await?;
    let (start, checkpoints) = under_load(build, checkpoints).await?;
    first.host.stop().await?;
    Ok(ReloadFigures {
        latency_reloads,
        latency_p50: p50,
        latency_p99: p99,
        start,
        checkpoints,
    })
}

struct Bench {
    folders: Folders,
    host: InProcessHost,
    token: String,
    builds: [Vec<u8>; 2],
}

impl Bench {
    async fn start(build: &Path, watch: bool) -> anyhow::Result<Bench> {
        let folders = Folders::new()?;
        let builds = [library(build, "a")?, library(build, "b")?];
        std::fs::write(folders.plugins().join("libswap.so"), &builds[0])?;
        let mut config = folders.config();
        config.plugins.watch = watch;
        config.plugins.debounce_ms = 20;
        config.plugins.max_leaked_versions = usize::MAX;
        config.admin.listen = None;
        let host = InProcessHost::start(config, Deps::new(host::logging::discard())).await?;
        let token = Connection::new(host.addr).login("bench").await?;
        Ok(Bench {
            folders,
            host,
            token,
            builds,
        })
    }

    fn file(&self) -> PathBuf {
        self.folders.plugins().join("libswap.so")
    }

    /// Which build answers 9501 on `connection`, or why not.
    async fn which(&self, connection: &mut Connection) -> Result<String, String> {
        let (status, body) = connection
            .post("/logic", Some(&self.token), r#"{"cmd":"9501"}"#)
            .await
            .map_err(|e| e.to_string())?;
        match body["data"]["build"].as_str() {
            Some(build) if status == 200 => Ok(build.to_owned()),
            _ => Err(format!("{status} {body}")),
        }
    }

    /// Puts build `n % 2` in place by rename.
    fn land(&self, n: usize) -> std::io::Result<()> {
        let temp = self.folders.plugins().join(".incoming");
        std::fs::write(&temp, &self.builds[n % 2])?;
        std::fs::rename(temp, self.file())
    }

    /// Waits until `reloads` old versions have left: retired, or reported as not unloaded.
    async fn wait_retired(&self, reloads: usize) {
        let retirement = self.host.state.registry.retirement();
        while (retirement.retired_count() as usize + retirement.leaked().len()) < reloads {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn library(build: &Path, variant: &str) -> anyhow::Result<Vec<u8>> {
    let path = build.join(format!("libfixture_swap_{variant}.so"));
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}; run `make bench`", path.display()))
}

async fn latency(bench: &Bench, reloads: usize) -> anyhow::Result<(Duration, Duration)> {
    let mut connection = Connection::new(bench.host.addr);
    let mut times = Vec::with_capacity(reloads);
    for n in 1..=reloads {
        let want = if n % 2 == 0 { "a" } else { "b" };
        let landed = Instant::now();
        bench.land(n)?;
        while bench.which(&mut connection).await.as_deref() != Ok(want) {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        times.push(landed.elapsed());
    }
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

async fn under_load(
    build: &Path,
    checkpoints: &[usize],
) -> anyhow::Result<(Memory, Vec<Checkpoint>)> {
    let bench = Arc::new(Bench::start(build, false).await?);
    let (stop, served, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (bench, stop, served, failed) =
                (bench.clone(), stop.clone(), served.clone(), failed.clone());
            tokio::spawn(async move {
                let mut connection = Connection::new(bench.host.addr);
                while !stop.load(Ordering::Relaxed) {
                    match bench.which(&mut connection).await {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let start = Memory::now();
    let started = Instant::now();
    let mut done = 0;
    let mut results = Vec::new();
    for &checkpoint in checkpoints {
        while done < checkpoint {
            done += 1;
            bench.land(done)?;
            let change = bench.host.state.registry.load_file(&bench.file()).await;
            anyhow::ensure!(
                matches!(change, Change::Swapped { .. }),
                "reload {done}: {change:?}"
            );
        }
        bench.wait_retired(done).await;
        let retirement = bench.host.state.registry.retirement();
        results.push(Checkpoint {
            reloads: done,
            memory: Memory::now(),
            retired: retirement.retired_count(),
            not_unloaded: retirement.leaked().len(),
            served: served.load(Ordering::Relaxed),
            failed: failed.load(Ordering::Relaxed),
            reloads_per_sec: done as f64 / started.elapsed().as_secs_f64(),
        });
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    // The clients have gone, and their handles on the bench with them: the host is stopped
    // (after the figures) before the next section runs.
    if let Ok(mut bench) = Arc::try_unwrap(bench) {
        bench.host.stop().await?;
    }
    Ok((start, results))
}
