//! Publish-to-fleet convergence: how long after `game-host publish` returns every host of a
//! fleet serves what it published, on PostgreSQL and on MariaDB.
//!
//! For each server: a scratch database ([`testkit::scratch`], as the stores section makes
//! its own), three release-built hosts on it (`fleet-a` to `fleet-c`, folders of their own,
//! `plugins.source = "database"`, the default `fleet.poll_ms`), then publishes one after
//! another of the release builds of `libmall.so` (with the shipped mall's tables) and
//! `libfixture_mall_sale.so` (the same module without tables, at half price), in turn, each
//! by the built `game-host publish`. Each host start and each publish comes after a pause of
//! a pseudo-random part of the poll interval ([`Pauses`]), so that polls and publishes meet
//! at any point of it. A publish's time runs from the command's exit (its
//! transaction has committed by then) to the moment all three hosts report that library's
//! sha256 for module `mall` in `GET /admin/modules`, each host asked every
//! [`POLL_EVERY`]; a publish not served everywhere within [`CONVERGE_WITHIN`] is counted as
//! not converged, with what each host still served. The scratch database is dropped at the
//! end whatever happened, the hosts stopped first; a server that does not answer skips its
//! row, saying why.

mod watch;

use crate::process::{self, HostOptions, Server};
use crate::stats::percentile;
use crate::stores::Database;
use anyhow::{anyhow, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::scratch::ScratchDatabase;
use watch::Watch;

/// The servers measured, in order.
pub const DATABASES: [Database; 2] = [Database::Postgres, Database::MariaDb];
/// The fleet's hosts, by `server.host_id`.
pub const HOST_IDS: [&str; 3] = ["fleet-a", "fleet-b", "fleet-c"];
/// How often each host is asked what it serves while a publish goes out.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// Past this, a publish has not converged: a host refused it or never saw it.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
/// The module both published libraries are.
pub const MODULE: &str = "mall";

/// The goal for a server: every host serving a publish within this, at p99.
pub fn target(database: Database) -> Duration {
    match database {
        Database::MariaDb => Duration::from_secs(2),
        // SQLite has none: a fleet on it is one host, not measured here.
        Database::Postgres | Database::Sqlite => Duration::from_secs(1),
    }
}

/// What the fleet section measured.
#[derive(Debug)]
pub struct FleetFigures {
    /// Publishes per server.
    pub publishes: usize,
    /// `fleet.poll_ms` as the hosts read it, if it could be read.
    pub poll_ms: Option<u64>,
    pub databases: Vec<DatabaseFigures>,
}

#[derive(Debug)]
pub struct DatabaseFigures {
    pub database: Database,
    pub outcome: Outcome,
}

/// How one server's run went.
#[derive(Debug)]
pub enum Outcome {
    Measured(Convergence),
    /// Not run, and why (the server does not answer, or refused a scratch database).
    Skipped(String),
    /// Started, but could not be measured (a host that did not start, a publish refused),
    /// and why.
    Failed(String),
}

/// The publishes of one server.
#[derive(Debug, Default)]
pub struct Convergence {
    /// Each converged publish's time to the last host serving it, in publish order.
    pub times: Vec<Duration>,
    /// Each publish that did not converge within [`CONVERGE_WITHIN`]: which, and what the
    /// hosts still served.
    pub not_converged: Vec<String>,
}

impl Convergence {
    pub fn publishes(&self) -> usize {
        self.times.len() + self.not_converged.len()
    }

    /// A percentile (0..=1) of the converged publishes' times; `None` if none converged.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.times.clone();
        sorted.sort();
        (!sorted.is_empty()).then(|| percentile(&sorted, p))
    }

    /// Whether every publish converged and the p99 is under `target`.
    pub fn meets(&self, target: Duration) -> bool {
        self.not_converged.is_empty() && self.percentile(0.99).is_some_and(|p99| p99 < target)
    }
}

/// A library the section publishes, and how the hosts will know they serve it.
struct Release {
    library: PathBuf,
    /// Its data tables folder (`--tables`), if it reads any.
    tables: Option<PathBuf>,
    /// The library's sha256, as `GET /admin/modules` shows it.
    sha256: String,
}

impl Release {
    fn read(library: PathBuf, tables: Option<PathBuf>) -> anyhow::Result<Release> {
        let bytes = std::fs::read(&library).map_err(|e| {
            anyhow!(
                "{}: {e}; build it first: `make bench` does",
                library.display()
            )
        })?;
        Ok(Release {
            sha256: host::plugins::loader::sha256_hex(&bytes),
            library,
            tables,
        })
    }

    fn name(&self) -> String {
        self.library
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// What one run needs to know, the same for every server.
struct Bench<'a> {
    build: &'a Path,
    config_dir: &'a Path,
    publishes: usize,
    /// The hosts' `fleet.poll_ms`: the range of the pauses between publishes.
    poll: Duration,
    /// Published in turn. The hosts start on the demo mall (copied into their plugins
    /// folders), so the sale goes first: every publish changes what they serve.
    releases: [Release; 2],
}

pub async fn run(
    build: &Path,
    config_dir: &Path,
    publishes: usize,
) -> anyhow::Result<FleetFigures> {
    // The shipped mall's tables, from where testkit installs them into a host's folders too.
    let mall_tables = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mall/tables");
    let poll_ms =
        process::host_setting(build, config_dir, "fleet", "poll_ms").and_then(|ms| ms.parse().ok());
    let cx = Bench {
        build,
        config_dir,
        publishes,
        // Unread, the pauses still spread over the documented default.
        poll: Duration::from_millis(poll_ms.unwrap_or(250)),
        releases: [
            Release::read(build.join("libfixture_mall_sale.so"), None)?,
            Release::read(build.join("libmall.so"), Some(mall_tables))?,
        ],
    };
    let mut databases = Vec::new();
    for database in DATABASES {
        // Ctrl-C (which the hosts get too) ends the section through the same path as an
        // error, so that the scratch database is still dropped.
        let outcome = tokio::select! {
            outcome = measure_database(&cx, database) => outcome,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        match &outcome {
            Outcome::Skipped(why) => eprintln!("fleet: SKIPPED {}: {why}", database.name()),
            Outcome::Failed(why) => eprintln!("fleet: FAILED {}: {why}", database.name()),
            Outcome::Measured(_) => {}
        }
        databases.push(DatabaseFigures { database, outcome });
    }
    Ok(FleetFigures {
        publishes,
        poll_ms,
        databases,
    })
}

async fn measure_database(cx: &Bench<'_>, database: Database) -> Outcome {
    let Some(server) = database.server() else {
        return Outcome::Skipped("not a database server".into());
    };
    let admin = match server.admin_url("GAME_BENCH") {
        Ok(admin) => admin,
        Err(why) => return Outcome::Skipped(why),
    };
    let name = format!(
        "game_bench_{}_fleet_{}",
        std::process::id(),
        database.name().to_lowercase()
    );
    let scratch = match ScratchDatabase::create(&admin, &name).await {
        Ok(scratch) => scratch,
        Err(why) => return Outcome::Skipped(why.to_string()),
    };
    // The hosts are stopped when this returns, before `scratch` is dropped.
    let measured = measure_fleet(cx, database, scratch.url()).await;
    drop(scratch);
    match measured {
        Ok(convergence) => Outcome::Measured(convergence),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

async fn measure_fleet(
    cx: &Bench<'_>,
    database: Database,
    url: &str,
) -> anyhow::Result<Convergence> {
    let name = database.name();
    eprintln!("fleet: {name}: starting {} hosts", HOST_IDS.len());
    let mut pauses = Pauses::new();
    let mut hosts = Vec::new();
    for host_id in HOST_IDS {
        // A host polls from its start: started one right after another, the three would poll
        // nearly in step and see each publish at about one time, as a real fleet's hosts,
        // started whenever, do not.
        tokio::time::sleep(pauses.next(cx.poll)).await;
        let options = HostOptions {
            database_url: Some(url),
            host_id: Some(host_id),
            env: &[("GAME_HOST_PLUGINS_SOURCE", "database")],
            ..HostOptions::default()
        };
        hosts.push(Server::host_with(cx.build, cx.config_dir, &options)?);
    }
    let mut watch = Watch::new(&hosts);
    let mut convergence = Convergence::default();
    for n in 0..cx.publishes {
        tokio::time::sleep(pauses.next(cx.poll)).await;
        let release = &cx.releases[n % 2];
        let what = format!("publish {}/{} ({})", n + 1, cx.publishes, release.name());
        publish(cx, url, release)
            .await
            .map_err(|e| anyhow!("{what}: {e:#}"))?;
        let published = Instant::now();
        match watch.until_serving(&release.sha256, published).await {
            Ok(took) => {
                eprintln!("fleet: {name}: {what}: {:.0} ms", took.as_secs_f64() * 1e3);
                convergence.times.push(took);
            }
            Err(behind) => {
                let behind = behind.join("; ");
                eprintln!("fleet: {name}: {what}: NOT CONVERGED: {behind}");
                convergence.not_converged.push(format!("{what}: {behind}"));
            }
        }
    }
    drop(hosts);
    Ok(convergence)
}

/// The pauses before host starts and publishes. Published back to back, each publish would
/// follow the last host's swap by the publish command's own time, so every publish would meet
/// the hosts' polls at the same point of their interval and the times would all be one figure
/// (about 190 ms with 250 ms polls, here). An operator's publish comes at any point of it: a
/// pause uniform over one interval puts each publish there. The sequence is a fixed xorshift,
/// the same on every run, as the load's mix is. The push section spaces its cross-host
/// samples with it too (MariaDB's hosts poll for pushes).
pub struct Pauses(u64);

impl Pauses {
    pub fn new() -> Pauses {
        Pauses(0x9E37_79B9_7F4A_7C15)
    }

    /// A pause in `0..interval`.
    pub fn next(&mut self, interval: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let micros = interval.as_micros().max(1) as u64;
        Duration::from_micros(self.0 % micros)
    }
}

/// `game-host publish` of the build, in the default profile, as an operator runs it; done
/// when it has exited.
async fn publish(cx: &Bench<'_>, url: &str, release: &Release) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new(cx.build.join("game-host"));
    command
        .arg("publish")
        .arg(&release.library)
        .arg("--config-dir")
        .arg(cx.config_dir)
        .args(["--operator", "game-bench", "--reason", "fleet convergence"]);
    if let Some(tables) = &release.tables {
        command.arg("--tables").arg(tables);
    }
    // The URL goes by the environment, as the hosts get it, where other users cannot read it
    // in `ps`. The demo modules are not signed: the hosts do not require it either
    // (process.rs).
    command
        .env_remove("GAME_HOST_STORE_URL")
        .env("GAME_HOST_DATABASE_URL", url)
        .env("GAME_HOST_TRUST_REQUIRE_SIGNATURE", "false");
    let output = command.output().await?;
    if !output.status.success() {
        bail!(
            "game-host publish exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_met_only_when_every_publish_converged_under_it() {
        let times = (1..=100).map(Duration::from_millis).collect::<Vec<_>>();
        let mut convergence = Convergence {
            times,
            not_converged: Vec::new(),
        };
        assert_eq!(convergence.percentile(0.5), Some(Duration::from_millis(51)));
        assert!(convergence.meets(Duration::from_millis(100)));
        assert!(!convergence.meets(Duration::from_millis(99)));
        convergence.not_converged.push("publish 101/101".into());
        assert!(!convergence.meets(Duration::from_secs(1)));
        assert!(!Convergence::default().meets(Duration::from_secs(1)));
    }
}
