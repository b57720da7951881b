//! Hot-swap figures (printed, never asserted), on the real host in this process, with module
//! `swap` (test builds "a" and "b") and real HTTP:
//!
//! 1. reload latency: from the library landing in the plugins directory (a rename) to the
//!    first reply by the new version, p50 and p99 over 100 reloads (includes the debounce);
//! 2. failed requests while reloading under load (8 clients), and reloads per second;
//! 3. RSS and memory-map count at start, after 1,000 and after 10,000 reloads.
//!
//! `QUICK=1` runs 20 / 100 / 1,000 instead. Needs release builds: `make bench` does it.

use host::plugins::Change;
use host::{Config, Deps};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn library(target: &Path, build: &str) -> Vec<u8> {
    let path = target.join(format!("libfixture_swap_{build}.so"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make bench`", path.display()))
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Bench {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    state: host::state::AppState,
    client: reqwest::Client,
    token: String,
    builds: [Vec<u8>; 2],
}

impl Bench {
    async fn start(target: &Path, watch: bool) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let builds = [library(target, "a"), library(target, "b")];
        std::fs::write(plugins.join("libswap.so"), &builds[0]).unwrap();
        let mut config = Config::default();
        config.paths.plugins_dir = plugins;
        config.paths.data_dir = dir.path().join("data");
        config.paths.log_dir = dir.path().join("log");
        config.plugins.watch = watch;
        config.plugins.debounce_ms = 20;
        config.plugins.max_leaked_versions = usize::MAX;
        config.admin.listen = None;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let deps = Deps::new(host::logging::discard());
        let started = host::Host::start(config, deps).await.unwrap();
        let state = started.state();
        tokio::spawn(started.serve(listener, std::future::pending()));
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("http://{addr}/login"))
            .body(r#"{"account":"bench"}"#)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        Bench {
            dir,
            addr,
            state,
            client,
            token,
            builds,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("plugins/libswap.so")
    }

    /// Which build answers 9501, or why not.
    async fn which(&self) -> Result<String, String> {
        let response = self
            .client
            .post(format!("http://{}/logic", self.addr))
            .bearer_auth(&self.token)
            .body(r#"{"cmd":"9501"}"#)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match body["data"]["build"].as_str() {
            Some(build) if status == 200 => Ok(build.to_owned()),
            _ => Err(format!("{status} {body}")),
        }
    }

    /// Puts build `n % 2` in place by rename.
    fn land(&self, n: usize) {
        let temp = self.dir.path().join("plugins/.incoming");
        std::fs::write(&temp, &self.builds[n % 2]).unwrap();
        std::fs::rename(temp, self.file()).unwrap();
    }

    async fn wait_retired(&self) {
        while !self.state.registry.retirement().draining().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn latency(target: &Path, reloads: usize) {
    let bench = Bench::start(target, true).await;
    let mut times = Vec::with_capacity(reloads);
    for n in 1..=reloads {
        let want = if n % 2 == 0 { "a" } else { "b" };
        let landed = Instant::now();
        bench.land(n);
        while bench.which().await.as_deref() != Ok(want) {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        times.push(landed.elapsed());
    }
    times.sort();
    println!(
        "reload latency, file landing to first reply by the new version ({reloads} reloads, debounce 20 ms): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}

async fn under_load(target: &Path, checkpoints: &[usize]) {
    let bench = Arc::new(Bench::start(target, false).await);
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
                while !stop.load(Ordering::Relaxed) {
                    match bench.which().await {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let (rss_start, maps_start) = (rss_kib(), maps());
    println!(
        "memory at start: RSS {:.1} MiB, {maps_start} maps",
        rss_start as f64 / 1024.0
    );
    let started = Instant::now();
    let mut done = 0;
    for &checkpoint in checkpoints {
        while done < checkpoint {
            done += 1;
            bench.land(done);
            let change = bench.state.registry.load_file(&bench.file()).await;
            assert!(
                matches!(change, Change::Swapped { .. }),
                "reload {done}: {change:?}"
            );
        }
        bench.wait_retired().await;
        let rss = rss_kib();
        println!(
            "after {done} reloads under load: RSS {:.1} MiB ({:+.1} MiB), {} maps ({:+}), {} retired, {} not unloaded, \
             {} requests served, {} failed, {:.0} reloads/s",
            rss as f64 / 1024.0,
            (rss as f64 - rss_start as f64) / 1024.0,
            maps(),
            maps() as i64 - maps_start as i64,
            bench.state.registry.retirement().retired_count(),
            bench.state.registry.retirement().leaked().len(),
            served.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
    let target = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        latency(&target, if quick { 20 } else { 100 }).await;
        let checkpoints: &[usize] = if quick {
            &[100, 1_000]
        } else {
            &[1_000, 10_000]
        };
        under_load(&target, checkpoints).await;
    });
}
