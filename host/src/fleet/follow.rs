//! A host following the fleet (`plugins.source = "database"`): it brings what it serves to
//! what is desired in the database, reports what it serves, and watches new releases.
//!
//! Every `fleet.poll_ms` it reads the change counter (one integer), and at once when PostgreSQL
//! notifies a change (`store::server::notices`). When it moved, or at start,
//! it reads every module's desired releases and, for each it does not serve (and has not
//! already refused), writes the release into its cache ([`super::cache`]) and loads it: the
//! release every player runs through [`Registry::reload_file`], the one load path, so it is
//! trusted, checked, loaded beside, swapped and drained exactly as a file that landed in the
//! directory; a canary through [`Registry::load_canary`], the same pipeline, beside it. A
//! refusal keeps what serves (and the cache as it was) and is remembered by release, so the
//! same release is not tried again until another is published (or the host restarts).
//!
//! It writes this host's [`HostReport`] after every change and every `fleet.heartbeat_secs`;
//! while a release is watched (a canary, or a new release for `fleet.watch_secs`), every
//! second, with each version's calls and failures, and then judges the fleet's figures
//! ([`super::watch`]), rolling a failing release back for the whole fleet.
//!
//! A database that does not answer is logged once per outage; the host keeps serving what it
//! has and catches up when the database is back. Cancel safety: the task is aborted only at
//! shutdown; each of its statements is a single autocommit statement (nothing is left open)
//! but for the automatic rollback, one transaction that a dropped future leaves to the pool to
//! roll back; files are written on a blocking thread that an abort does not cut.

use super::cache::{canary_dir, forget_canary, Installed};
use super::watch::{judge, Verdict};
use super::{ModuleReport, Refusal, ReleaseCounts};
use crate::clock::Clock;
use crate::config::FleetConfig;
use crate::plugins::registry::Registry;
use crate::plugins::{Change, ModuleVersion};
use crate::push::PushHub;
use crate::store::fleet::{Desired, FleetChange, FleetOutcome, HostReport, Release};
use crate::store::{AuditNote, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which of a module's two places a release takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    /// What every player runs (but a canary's share).
    Stable,
    Canary,
}

/// How often a watched release's figures are reported and judged.
const JUDGE_EVERY: Duration = Duration::from_secs(1);

/// One host's follower of the fleet's desired releases.
pub struct Follower {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    log: slog::Logger,
    config: FleetConfig,
    /// What this host reports of itself besides its modules.
    host_id: String,
    address: String,
    /// Who is connected to this host, for the report's players online.
    pushes: Arc<PushHub>,
    started_at_ms: i64,
    /// The last release refused per module and slot. A std `Mutex`: never held across
    /// `.await`.
    refused: Mutex<HashMap<(String, Slot), Refusal>>,
    /// The desired releases as last read.
    desired: Mutex<Vec<Desired>>,
    /// Serializes [`Follower::catch_up`]: the start-up call and the polling task.
    catching_up: tokio::sync::Mutex<()>,
    /// A release could not be written (not refused): catch up again at the next poll.
    retry: AtomicBool,
    /// Per module, the figures of the version the last swap replaced, reported beside the new
    /// one's: the safety net compares a new release with the one before it.
    replaced: Mutex<HashMap<String, ReleaseCounts>>,
}

impl Follower {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
        config: FleetConfig,
        (host_id, address): (String, String),
        pushes: Arc<PushHub>,
    ) -> Follower {
        let started_at_ms = clock.now_millis();
        Follower {
            store,
            registry,
            clock,
            log,
            config,
            host_id,
            address,
            pushes,
            started_at_ms,
            refused: Mutex::new(HashMap::new()),
            desired: Mutex::new(Vec::new()),
            catching_up: tokio::sync::Mutex::new(()),
            retry: AtomicBool::new(false),
            replaced: Mutex::new(HashMap::new()),
        }
    }

    /// Loads every desired release this host does not serve yet (and has not refused), stops
    /// a canary no longer desired, then reports. Returns the changes it made.
    pub async fn catch_up(&self) -> Result<Vec<Change>, StoreError> {
        let _one_at_a_time = self.catching_up.lock().await;
        let desired = self.store.fleet().desired().await?;
        *lock(&self.desired) = desired.clone();
        let mut changes = Vec::new();
        for module in &desired {
            let stable = Some((module.release_id.as_str(), 0));
            changes.extend(self.converge(&module.module, Slot::Stable, stable).await?);
            let canary = module
                .canary_id
                .as_deref()
                .map(|id| (id, module.canary_percent));
            changes.extend(self.converge(&module.module, Slot::Canary, canary).await?);
        }
        self.report().await?;
        Ok(changes)
    }

    /// Brings `module`'s `slot` to `wanted` (a release and, for a canary, its share).
    async fn converge(
        &self,
        module: &str,
        slot: Slot,
        wanted: Option<(&str, u8)>,
    ) -> Result<Option<Change>, StoreError> {
        let key = (module.to_owned(), slot);
        let here = self.loaded(module, slot);
        let Some((release_id, percent)) = wanted else {
            lock(&self.refused).remove(&key);
            if let (Slot::Canary, Some(_)) = (slot, here) {
                let dropped = self.registry.drop_canary(module).await;
                let (plugins, module) = (self.registry.plugins_dir().to_owned(), module.to_owned());
                let forgotten =
                    tokio::task::spawn_blocking(move || forget_canary(&plugins, &module)).await;
                if let Ok(Err(e)) | Err(e) = forgotten.map_err(std::io::Error::other) {
                    slog::warn!(self.log, "cannot remove a stopped canary from the cache"; "error" => %e);
                }
                return Ok(Some(dropped));
            }
            return Ok(None);
        };
        if let Some((identity, here_percent)) = here {
            if identity == release_id {
                lock(&self.refused).remove(&key);
                if slot == Slot::Canary && here_percent != percent {
                    self.registry.set_canary_percent(module, percent).await;
                }
                return Ok(None);
            }
        }
        if lock(&self.refused)
            .get(&key)
            .is_some_and(|r| r.release == release_id)
        {
            return Ok(None);
        }
        let before = match slot {
            Slot::Stable => self.stable_counts(module),
            Slot::Canary => None,
        };
        let change = match self.store.fleet().release(release_id).await? {
            Some(release) => match self.load(&release, slot, percent).await {
                Ok(change) => change,
                Err(why) => {
                    // Not the release's fault (a full disk): tried again at the next poll.
                    slog::warn!(self.log, "cannot write a published release into the cache; trying again";
                        "module" => module, "release" => release_id, "error" => &why);
                    self.retry.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
            },
            None => Change::Refused(format!(
                "release {release_id} of `{module}` is not in the database any more: publish it again"
            )),
        };
        match &change {
            Change::Refused(reason) => {
                slog::warn!(self.log, "refused a published release; what serves stays";
                    "module" => module, "release" => release_id, "slot" => ?slot, "reason" => reason);
                lock(&self.refused).insert(
                    key,
                    Refusal {
                        release: release_id.to_owned(),
                        reason: reason.clone(),
                    },
                );
            }
            _ => {
                slog::info!(self.log, "now serving the published release";
                    "module" => module, "release" => release_id, "slot" => ?slot);
                lock(&self.refused).remove(&key);
                if let Some(before) = before {
                    lock(&self.replaced).insert(module.to_owned(), before);
                }
            }
        }
        Ok(Some(change))
    }

    /// Polls the change counter every `fleet.poll_ms` and catches up when it moved; reports
    /// every `fleet.heartbeat_secs`, or every second while a release is watched, and then
    /// judges it. Runs until aborted (at shutdown).
    pub async fn run(self: Arc<Self>) {
        let poll = Duration::from_millis(self.config.poll_ms);
        let heartbeat = Duration::from_secs(self.config.heartbeat_secs);
        let mut seen: Option<i64> = None;
        let mut reported = Instant::now();
        let mut failing = false;
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // PostgreSQL wakes the follower at each change; every store is polled as well.
        let mut notices = self.store.fleet().change_notices();
        loop {
            let noticed = async {
                match notices.as_mut() {
                    Some(notices) => notices.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ticks.tick() => {}
                listening = noticed => {
                    if !listening {
                        notices = None;
                    }
                }
            }
            let step = async {
                let changes = self.store.fleet().fleet_changes().await?;
                let retry = self.retry.swap(false, Ordering::Relaxed);
                if seen != Some(changes) || retry {
                    self.catch_up().await?;
                    seen = Some(changes);
                    reported = Instant::now();
                }
                let watching = self.watched();
                let every = if watching.is_empty() {
                    heartbeat
                } else {
                    JUDGE_EVERY
                };
                if reported.elapsed() >= every {
                    self.report().await?;
                    reported = Instant::now();
                    for desired in &watching {
                        self.watch(desired).await?;
                    }
                }
                Ok::<(), StoreError>(())
            };
            match step.await {
                Ok(()) if failing => {
                    failing = false;
                    slog::info!(self.log, "the fleet's database answers again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    slog::warn!(self.log, "cannot follow the fleet's releases; serving what is loaded until the database answers"; "error" => %e);
                }
                Err(_) => {}
            }
        }
    }

    /// The modules whose releases are watched now: a canary runs, or a release made desired
    /// for every player is within its watch.
    fn watched(&self) -> Vec<Desired> {
        let now = self.clock.now_millis();
        lock(&self.desired)
            .iter()
            .filter(|d| d.canary_id.is_some() || d.watch_until_ms > now)
            .cloned()
            .collect()
    }

    /// Judges a watched release on every host's figures, and rolls it back for the whole
    /// fleet if it fails ([`judge`]). Every host judges; the first rollback applies, the
    /// others find the release already gone (`expected`).
    async fn watch(&self, desired: &Desired) -> Result<(), StoreError> {
        let reports = self.store.fleet().hosts().await?;
        let Some(verdict) = judge(desired, &reports, &self.config) else {
            return Ok(());
        };
        let Verdict { release, reason } = verdict;
        let note = AuditNote {
            operator: "automatic".into(),
            reason: reason.clone(),
            at_ms: self.clock.now_millis(),
        };
        let change = FleetChange::RollBack {
            expected: Some(release.clone()),
        };
        let outcome = self
            .store
            .fleet()
            .change(
                &desired.module,
                &change,
                None,
                &note,
                self.config.retention(),
            )
            .await?;
        if let FleetOutcome::Changed { .. } = outcome {
            slog::error!(self.log, "rolled a failing release back for the whole fleet";
                "module" => &desired.module, "release" => &release, "why" => &reason);
        }
        Ok(())
    }

    /// Writes this host's report: what it serves and refused, now.
    pub async fn report(&self) -> Result<(), StoreError> {
        let modules = self.modules();
        let report = HostReport {
            host_id: self.host_id.clone(),
            address: self.address.clone(),
            binary_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: self.started_at_ms,
            last_seen_ms: self.clock.now_millis(),
            modules: serde_json::to_string(&modules).expect("reports serialize"),
            players_online: i64::try_from(self.pushes.online_players()).unwrap_or(i64::MAX),
        };
        self.store.fleet().report_host(&report).await
    }

    /// Every module this host serves or refused, by name, with each loaded version's figures.
    pub fn modules(&self) -> Vec<ModuleReport> {
        let routes = self.registry.routes();
        let desired_at: HashMap<String, i64> = lock(&self.desired)
            .iter()
            .map(|d| (d.module.clone(), d.changed_at_ms))
            .collect();
        let mut modules: BTreeMap<String, ModuleReport> = BTreeMap::new();
        let counts = |version: &ModuleVersion| {
            let counts = version.stats.counts();
            ReleaseCounts {
                release: version.identity(),
                calls: counts.calls,
                failures: counts.failures,
            }
        };
        for version in routes.versions() {
            let name = version.meta.name.clone();
            let canary = routes.canary(&name);
            let mut figures = vec![counts(&version)];
            figures.extend(canary.map(|c| counts(&c.version)));
            let replaced = lock(&self.replaced).get(&name).cloned();
            figures.extend(replaced.filter(|r| figures.iter().all(|f| f.release != r.release)));
            modules.insert(
                name.clone(),
                ModuleReport {
                    module: name,
                    serving: Some(version.identity()),
                    version: Some(version.meta.version.clone()),
                    canary: canary.map(|c| c.version.identity()),
                    canary_percent: canary.map_or(0, |c| c.percent),
                    counts: figures,
                    desired_at_ms: desired_at.get(&version.meta.name).copied().unwrap_or(0),
                    refused: None,
                },
            );
        }
        for ((module, _), refusal) in lock(&self.refused).iter() {
            modules
                .entry(module.clone())
                .or_insert_with(|| ModuleReport {
                    module: module.clone(),
                    ..ModuleReport::default()
                })
                .refused = Some(refusal.clone());
        }
        modules.into_values().collect()
    }

    /// The figures of the version of `module` serving here, if one does.
    fn stable_counts(&self, module: &str) -> Option<ReleaseCounts> {
        let routes = self.registry.routes();
        let version = routes.by_name(module)?;
        let counts = version.stats.counts();
        Some(ReleaseCounts {
            release: version.identity(),
            calls: counts.calls,
            failures: counts.failures,
        })
    }

    /// The identity of what serves in `module`'s `slot` here, and its share (a canary's).
    fn loaded(&self, module: &str, slot: Slot) -> Option<(String, u8)> {
        let routes = self.registry.routes();
        match slot {
            Slot::Stable => routes.by_name(module).map(|v| (v.identity(), 0)),
            Slot::Canary => routes
                .canary(module)
                .map(|c| (c.version.identity(), c.percent)),
        }
    }

    /// Writes `release` into the cache and loads it into `slot`; `Err` if it could not be
    /// written (the cache is then as it was).
    async fn load(&self, release: &Release, slot: Slot, percent: u8) -> Result<Change, String> {
        let plugins = self.registry.plugins_dir().to_owned();
        let (dir, file) = match slot {
            // Over the file the module serves from, if it serves; else `lib<module>.so`.
            Slot::Stable => {
                let serving = self
                    .registry
                    .routes()
                    .by_name(&release.module)
                    .map(|v| v.meta.file.clone());
                let file = serving.unwrap_or_else(|| plugins.join(library_name(release)));
                (plugins.clone(), file)
            }
            Slot::Canary => {
                let dir = canary_dir(&plugins);
                let file = dir.join(library_name(release));
                (dir, file)
            }
        };
        let installed = {
            let (release, file, dir) = (release.clone(), file.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                Installed::write(&release, &file, &dir)
            })
            .await
        };
        let installed = match installed {
            Ok(Ok(installed)) => installed,
            // A stored library that is not what was published is the release's fault.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Other => {
                return Ok(Change::Refused(e.to_string()))
            }
            Ok(Err(e)) => return Err(format!("cannot write into {}: {e}", dir.display())),
            Err(e) => return Err(format!("writing the release failed: {e}")),
        };
        let change = match slot {
            Slot::Stable => self.registry.reload_file(&file).await,
            Slot::Canary => {
                self.registry
                    .load_canary(&release.module, &file, percent)
                    .await
            }
        };
        // A refused release leaves the cache as it was, so a restart serves what serves now.
        let refused = matches!(change, Change::Refused(_));
        let settled = tokio::task::spawn_blocking(move || installed.settle(refused)).await;
        if let Ok(Err(e)) | Err(e) = settled.map_err(std::io::Error::other) {
            slog::warn!(self.log, "cannot tidy the plugins directory after a release"; "error" => %e);
        }
        Ok(change)
    }
}

/// A release's library file name in the cache: `lib<module>.so`.
fn library_name(release: &Release) -> String {
    format!("lib{}.so", release.module)
}

/// Locks `mutex`, also after a panic elsewhere: the maps it guards are whole between calls.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
