//! What durability costs on the embedded store: SQLite's `synchronous` setting, `NORMAL` (what
//! the host sets, in WAL mode) against `FULL`, on the same file system in the same run.
//!
//! The host's setting is `store.sqlite_synchronous`; this measures the store's work without
//! the host around it, so that both settings run in alternating rounds on one file system:
//! a database made by the host's own store (its schema; players created by its `login`), then
//! the turns of the `write` workload (`1201`) through that store, opened with each setting
//! as `Host::start` opens it (`host::store::open`): one turn after another, each the
//! player's record and the module's data read (`Store::begin_turn`) and the renamed record
//! written and committed (`PlayerTurn::end`, timed as the commit). Rounds alternate the two
//! settings; figures are medians.
//!
//! Then the real thing: two `game-host` processes, one per setting
//! (`GAME_HOST_STORE_SQLITE_SYNCHRONOUS`), under the `write` workload in alternating rounds.
//! The host commits the turns queued together in one transaction (group commit), so under
//! load `FULL` syncs once per group, not once per turn as in the standalone loop.

use crate::load::{self, LoadRun, Shape, Workload};
use crate::process::{HostOptions, Server};
use crate::stats::{median, percentile};
use host::store::{Durability, SessionCheck, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Players the turns cycle through.
const PLAYERS: usize = 200;

/// The two settings compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// The host's: the WAL is synced at checkpoints only. A killed process loses nothing
    /// committed; a power loss or OS crash may lose the last commits (never corrupts).
    Normal,
    /// The WAL is synced at every commit: a commit survives a power loss too.
    Full,
}

impl Synchronous {
    pub const BOTH: [Synchronous; 2] = [Synchronous::Normal, Synchronous::Full];

    pub fn name(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }

    /// The store's setting.
    fn durability(self) -> Durability {
        match self {
            Synchronous::Normal => Durability::Normal,
            Synchronous::Full => Durability::Full,
        }
    }
}

/// One setting's rounds.
#[derive(Debug)]
pub struct Mode {
    pub synchronous: Synchronous,
    /// Turns per second, one per round.
    pub turns_per_sec: Vec<f64>,
    /// Commit latency (a turn's `end`: its write, committed) over all rounds, sorted.
    pub commits: Vec<Duration>,
    /// The host with this setting under `write`, one run per round.
    pub host_write: Vec<LoadRun>,
}

impl Mode {
    pub fn throughput(&self) -> f64 {
        median(self.turns_per_sec.iter().copied())
    }

    pub fn commit_ms(&self, p: f64) -> f64 {
        percentile(&self.commits, p).as_secs_f64() * 1e3
    }

    /// The host's `write` requests per second (median over rounds).
    pub fn host_write_throughput(&self) -> f64 {
        median(self.host_write.iter().map(LoadRun::throughput))
    }

    /// The host's `write` requests that failed (non-2xx, `ret` < 0, no reply), all rounds.
    pub fn host_write_failed(&self) -> u64 {
        self.host_write
            .iter()
            .map(|run| run.non_2xx + run.negative_ret + run.failed)
            .sum()
    }

    /// The host's `write` latency at percentile `p` (0–100; median over rounds), in ms.
    pub fn host_write_ms(&self, p: f64) -> f64 {
        median(self.host_write.iter().map(|run| run.latency_ms(p)))
    }
}

/// What the durability section measured.
#[derive(Debug)]
pub struct DurabilityFigures {
    pub rounds: usize,
    pub window: Duration,
    /// Where the database was: the folder's file system and device (`/proc/mounts`).
    pub filesystem: String,
    /// The host runs' connections.
    pub connections: usize,
    pub modes: Vec<Mode>,
}

impl DurabilityFigures {
    pub fn mode(&self, synchronous: Synchronous) -> Option<&Mode> {
        self.modes.iter().find(|m| m.synchronous == synchronous)
    }
}

/// Makes the database with the host's store, then runs `rounds` rounds of `window` per
/// setting; then `rounds` rounds of `write` of `shape` on a host per setting.
pub async fn run(
    build: &Path,
    config_dir: &Path,
    shape: Shape,
    host_players: usize,
    rounds: usize,
    window: Duration,
) -> anyhow::Result<DurabilityFigures> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("game.db");
    let players = create(&path).await?;
    let mut modes: Vec<Mode> = Synchronous::BOTH
        .iter()
        .map(|&synchronous| Mode {
            synchronous,
            turns_per_sec: Vec::new(),
            commits: Vec::new(),
            host_write: Vec::new(),
        })
        .collect();
    for round in 1..=rounds {
        for mode in &mut modes {
            eprintln!(
                "durability round {round}/{rounds}: synchronous = {}",
                mode.synchronous.name()
            );
            let (turns, mut commits) = turns(&path, mode.synchronous, &players, window).await?;
            mode.turns_per_sec.push(turns as f64 / window.as_secs_f64());
            mode.commits.append(&mut commits);
        }
    }
    for mode in &mut modes {
        mode.commits.sort();
    }
    let hosts = Synchronous::BOTH
        .iter()
        .map(|synchronous| {
            let setting = [(
                "GAME_HOST_STORE_SQLITE_SYNCHRONOUS",
                synchronous.name().to_ascii_lowercase(),
            )];
            let env: Vec<(&str, &str)> = setting.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let options = HostOptions {
                env: &env,
                ..HostOptions::default()
            };
            Server::host_with(build, config_dir, &options)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tokens = Vec::new();
    for host in &hosts {
        tokens.push(Arc::new(
            load::login_players(host.addr, host_players).await?,
        ));
    }
    for round in 1..=rounds {
        for ((mode, host), tokens) in modes.iter_mut().zip(&hosts).zip(&tokens) {
            eprintln!(
                "durability round {round}/{rounds}: the host under write, synchronous = {}",
                mode.synchronous.name()
            );
            let run = load::run(host.addr, Workload::Write, tokens.clone(), shape).await;
            mode.host_write.push(run);
        }
    }
    Ok(DurabilityFigures {
        rounds,
        window,
        filesystem: filesystem_of(dir.path()),
        connections: shape.connections,
        modes,
    })
}

/// A new database at `path` made by the host's store, with [`PLAYERS`] players; their ids.
async fn create(path: &Path) -> anyhow::Result<Vec<String>> {
    let store = open(path, Synchronous::Normal).await?;
    let mut ids = Vec::with_capacity(PLAYERS);
    for n in 0..PLAYERS {
        let id = format!("{n:032x}");
        let player = plugin_api::Player::new(id.clone(), format!("bench-{n}"), "");
        store
            .login(&format!("bench-{n}"), player, 0)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    store.close().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ids)
}

/// The host's store on the database at `path` with `synchronous`, opened as `Host::start`
/// opens it: the default config but for `store.url` and `store.sqlite_synchronous`.
async fn open(path: &Path, synchronous: Synchronous) -> anyhow::Result<Arc<dyn Store>> {
    let mut config = host::Config::default();
    config.store.url = format!("sqlite://{}", path.display());
    config.store.sqlite_synchronous = synchronous.durability();
    let url = config.database_url().map_err(|e| anyhow::anyhow!("{e}"))?;
    host::store::open(&url, &config.pool_settings(), config.sqlite_options())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Turns run in `window` with `synchronous`, and each one's commit time.
async fn turns(
    path: &Path,
    synchronous: Synchronous,
    players: &[String],
    window: Duration,
) -> anyhow::Result<(u64, Vec<Duration>)> {
    let store = open(path, synchronous).await?;
    let (mut done, mut commits) = (0u64, Vec::new());
    let end = Instant::now() + window;
    while Instant::now() < end {
        let player = &players[done as usize % players.len()];
        commits.push(turn(store.as_ref(), player, done).await?);
        done += 1;
    }
    // As the host closes: the log folded into the database, outside the measured window.
    store.close().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((done, commits))
}

/// One `1201` turn through the store: read, then write a new name; the commit's duration.
async fn turn(store: &dyn Store, player_id: &str, seq: u64) -> anyhow::Result<Duration> {
    // The embedded store does not check the session again (only its host uses the file).
    let session = SessionCheck {
        token_hash: "",
        now_ms: seq as i64,
    };
    let turn = store
        .begin_turn(player_id, "player", session)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut player = turn.player.clone();
    player.name = format!("bench-{seq}");
    let committing = Instant::now();
    turn.end(Some(&player), None, seq as i64)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(committing.elapsed())
}

/// The file system type and device that hold `dir` (the longest mount point above it).
fn filesystem_of(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(PathBuf::from(point))
                .then(|| (point.len(), format!("{kind} on {device}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown file system".into(), |(_, fs)| fs)
}
