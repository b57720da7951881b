//! The soak: the real `game-host` (profile prod, the demo modules) under the `mixed` load for a
//! long while (10 minutes; 10 s in a quick run), with the mall hot-swapped every 2 s and a
//! hostile client ([`hostile`]) beside the load. What it reports: the load's requests and
//! failures (target 0), the hostile requests by kind and by the `ret` they got (none may get a
//! 5xx, and every well-formed one gets its refusal), the reloads done, the host's memory at the
//! start and the end.
//!
//! Reloads go through the admin API (`POST /admin/modules/mall/reload`) with the watcher off,
//! so that each is counted once: the demo mall and `fixture-mall-sale` (the same commands at
//! half price) land in turn on `libmall.so` by a rename, as a deployment would put them.
//!
//! The judgement, [`SoakFigures::targets`], is the report's and an `#[ignore]`d test's
//! (`soak/tests.rs`), which `make soak` runs on the debug build.

mod hostile;

pub use hostile::{Answer, HostileFigures};
#[cfg(test)]
pub use hostile::{Kind, KindFigures};

use crate::load::{self, Connection, LoadRun, Shape, Workload};
use crate::process::{HostOptions, Server};
use crate::throughput::sample_rss;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Between two reloads.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Between two hostile requests of the fast loop.
const HOSTILE_PAUSE: Duration = Duration::from_millis(5);

/// What the soak measured.
#[derive(Debug)]
pub struct SoakFigures {
    pub duration: Duration,
    pub connections: usize,
    pub players: usize,
    /// The `mixed` load, over the whole soak.
    pub load: LoadRun,
    pub reloads: u64,
    /// Reloads that did not swap, with the first one's reply.
    pub reloads_failed: u64,
    pub first_reload_failure: Option<String>,
    /// After the load: versions retired (unloaded), and those still in memory.
    pub retired: u64,
    pub not_unloaded: usize,
    /// The host's RSS once the players were logged in, at most meanwhile, and after the load.
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
    pub hostile: HostileFigures,
}

/// One of the soak's targets, and whether the run met it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// What it asks, as the report says it.
    pub asks: &'static str,
    pub met: bool,
}

impl SoakFigures {
    /// Failed requests of the load: no reply, a status other than 2xx, or a host error.
    pub fn load_failures(&self) -> u64 {
        self.load.failed + self.load.non_2xx + self.load.negative_ret
    }

    /// The soak's judgement: what the report marks met or missed, and what the soak test
    /// (`make soak`) requires.
    pub fn targets(&self) -> [Target; 3] {
        [
            Target {
                asks: "no failed request of the load",
                met: self.load_failures() == 0,
            },
            Target {
                asks: "no failed reload",
                met: self.reloads_failed == 0,
            },
            Target {
                asks: "no 5xx and every well-formed hostile request answered as expected",
                met: self.hostile.failures() == 0,
            },
        ]
    }
}

pub async fn run(
    build: &Path,
    config_dir: &Path,
    connections: usize,
    players: usize,
    duration: Duration,
) -> anyhow::Result<SoakFigures> {
    let options = HostOptions {
        env: &[("GAME_HOST_PLUGINS_WATCH", "false")],
        ..HostOptions::default()
    };
    let host = Server::host_with(build, config_dir, &options)?;
    let builds = Arc::new([
        read(&build.join("libmall.so"))?,
        read(&build.join("libfixture_mall_sale.so"))?,
    ]);
    let tokens = Arc::new(load::login_players(host.addr, players).await?);
    let hostile_token = Connection::new(host.addr).login("hostile").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_start_kib = host.rss_kib()?;
    let peak = Arc::new(AtomicU64::new(rss_start_kib));
    let sampler = sample_rss(host.pid(), peak.clone());

    let end = Instant::now() + duration;
    let shape = Shape {
        connections,
        warmup: Duration::ZERO,
        measure: duration,
    };
    let (admin, plugins) = (host.admin_addr, host.plugins_dir());
    let (load, hostile, reloads) = tokio::join!(
        load::run(host.addr, Workload::Mixed, tokens, shape),
        hostile::run(host.addr, hostile_token, end, HOSTILE_PAUSE),
        reload_until(admin, &plugins, builds, end),
    );
    let (reloads, reloads_failed, first_reload_failure) = reloads?;
    let rss_end_kib = host.rss_kib()?;
    sampler.abort();
    let (_, modules) = Connection::new(admin)
        .get("/admin/modules")
        .await
        .map_err(|e| anyhow::anyhow!("GET /admin/modules: {e}"))?;
    Ok(SoakFigures {
        duration,
        connections,
        players,
        load,
        reloads,
        reloads_failed,
        first_reload_failure,
        retired: modules["retired"].as_u64().unwrap_or(0),
        not_unloaded: modules["not_unloaded"].as_array().map_or(0, Vec::len),
        rss_start_kib,
        rss_peak_kib: peak.load(Ordering::Relaxed),
        rss_end_kib,
        hostile,
    })
}

fn read(library: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(library).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; run `make bench` (release) or `make soak` (debug)",
            library.display()
        )
    })
}

/// Every [`RELOAD_EVERY`] until `end`: the other build of the mall lands on `libmall.so`, and
/// the admin API reloads it. Reloads done, those that did not swap, and the first such reply.
async fn reload_until(
    admin: std::net::SocketAddr,
    plugins: &Path,
    builds: Arc<[Vec<u8>; 2]>,
    end: Instant,
) -> anyhow::Result<(u64, u64, Option<String>)> {
    let mut connection = Connection::new(admin);
    let (mut done, mut failed, mut first_failure) = (0u64, 0u64, None);
    let incoming = plugins.join(".incoming");
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        if Instant::now() >= end {
            break;
        }
        // The installed build is builds[0]: the first reload lands the other.
        std::fs::write(&incoming, &builds[(done as usize + 1) % 2])?;
        std::fs::rename(&incoming, plugins.join("libmall.so"))?;
        let reply = connection
            .post("/admin/modules/mall/reload", None, "")
            .await;
        done += 1;
        match reply {
            Ok((200, reply)) if reply["change"] == "swapped" => {}
            other => {
                failed += 1;
                first_failure.get_or_insert_with(|| format!("{other:?}"));
            }
        }
    }
    Ok((done, failed, first_failure))
}

#[cfg(test)]
mod tests;
