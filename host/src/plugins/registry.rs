//! The registry: which module version serves each prefix, and the one path by which that
//! changes.
//!
//! The routing table is an immutable [`Routes`] snapshot behind `arc-swap`: a request loads
//! the current snapshot and clones the version it needs, without waiting on any lock; a change
//! builds a whole new snapshot and swaps it in. Every change (start-up, a file that changed or
//! went, a rescan, an admin reload or rollback) goes through [`Registry::load_file`],
//! [`Registry::remove_file`] or [`Registry::rollback`], serialized by one lock: load beside
//! the serving version, check, then either swap and retire the old one, or refuse and keep
//! what serves. Start-up is a rescan from empty.
//!
//! Length: the change path is one unit (load, remove, rescan, rollback, publish and refuse share
//! the control lock and what it guards); the routing snapshot, the load pipeline, retirement and
//! the archive are files of their own.

mod canary;
mod routes;

pub use routes::Routes;

use super::archive::{Archive, Kept};
use super::call::CallLimits;
use super::data_check::{DataCheckReport, DataChecks, Swap};
use super::events::{Event, EventKind, EventLog};
use super::executor::Executor;
use super::pipeline::Pipeline;
use super::retire::Retirement;
use super::rewrite::{self, Rewrite};
use super::tables::{self, TableSet};
use super::trust::Trust;
use super::version::{identity, ModuleVersion, Refused};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// What one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A module started serving (`generation` is its new version's).
    Loaded { module: String, generation: u64 },
    /// A new version replaced the serving one, which now drains.
    Swapped { module: String, generation: u64 },
    /// Same content as what serves, or as what was last refused: nothing to do.
    Unchanged,
    /// Refused; what serves stays. The reason says what to do.
    Refused(String),
    /// The module stopped serving and drains.
    Removed { module: String },
}

/// What a scan of the plugins directory did.
#[derive(Debug, Default, Clone)]
pub struct ScanReport {
    /// Names of the modules loaded or swapped by the scan.
    pub loaded: Vec<String>,
    /// Files refused, with why.
    pub refused: Vec<(PathBuf, String)>,
}

/// Why a rollback did not happen; what serves is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no module `{0}` is serving")]
    NotServing(String),
    #[error("no previous version of `{0}` is kept")]
    NothingKept(String),
    #[error("cannot read the kept version {}: {source}", file.display())]
    Unreadable {
        file: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the kept version {} changed on disk since it served: not loaded", .0.display())]
    Changed(std::path::PathBuf),
    #[error("the previous version cannot be loaded any more: {0}")]
    Refused(Box<Refused>),
}

/// Owns the modules, the threads that run them, and their history.
pub struct Registry {
    routes: ArcSwap<Routes>,
    /// How a library becomes a version: every load goes through it.
    pipeline: Pipeline,
    retirement: Arc<Retirement>,
    events: Arc<EventLog>,
    /// Serializes every change. A tokio mutex: a change awaits module threads while holding it.
    control: tokio::sync::Mutex<Control>,
    /// Previous good versions' libraries, for rollback. Changed only under `control`; its own
    /// std `Mutex` (never held across `.await`) lets the admin API read it while a change runs.
    archive: Mutex<Archive>,
    /// The saved-data checks of swaps between schemas, and their last reports.
    data_checks: DataChecks,
    /// The store the checks read and the rewrites after a step back write.
    store: Arc<dyn Store>,
    /// Each module's running rewrite after a step back, by its stop flag.
    rewrites: Mutex<HashMap<String, Arc<AtomicBool>>>,
    plugins_dir: PathBuf,
    log: slog::Logger,
}

/// What only the change path reads and writes.
struct Control {
    /// Loads per module name since start.
    generations: HashMap<String, u64>,
    /// The sha256 of the library last refused per file (or rolled back from): not tried again
    /// until the file changes.
    refused: HashMap<PathBuf, String>,
    /// Per file, the library and tables ([`identity`]) last refused for the tables: not tried
    /// again until either changes.
    refused_tables: HashMap<PathBuf, String>,
}

impl Registry {
    /// An empty registry with its executor started. `store` is what a swap between saved-data
    /// schemas is checked against.
    pub fn new(
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
        store: Arc<dyn Store>,
    ) -> std::io::Result<Registry> {
        let shadow_dir = config.paths.data_dir.join("shadow");
        // Shadow copies are unlinked once loaded; anything here was left by a crashed run.
        let _ = std::fs::remove_dir_all(&shadow_dir);
        std::fs::create_dir_all(&shadow_dir)?;
        // Only the host (and root) may change a copy between its writing and its loading.
        std::fs::set_permissions(&shadow_dir, std::fs::Permissions::from_mode(0o700))?;
        let trust =
            Trust::from_config(&config.trust).map_err(|e| std::io::Error::other(e.to_string()))?;
        let archive = Archive::open(
            config.paths.data_dir.join("versions"),
            config.plugins.keep_versions,
        )?;
        let threads = config.plugins.worker_threads();
        let executor = Arc::new(Executor::start(threads)?);
        slog::info!(log, "module threads started";
            "threads" => threads, "plugins.workers" => config.plugins.workers);
        let plugins_dir = config.paths.plugins_dir.clone();
        let retirement = Arc::new(Retirement::new(config.drain_deadline()));
        let data_checks = DataChecks::new(
            Some(store.clone()),
            config.plugins.migration_check_max_players,
        );
        Ok(Registry {
            routes: ArcSwap::from_pointee(Routes::default()),
            pipeline: Pipeline::new(trust, executor, shadow_dir, config, clock, log.clone()),
            retirement,
            events: Arc::new(EventLog::default()),
            control: tokio::sync::Mutex::new(Control {
                generations: HashMap::new(),
                refused: HashMap::new(),
                refused_tables: HashMap::new(),
            }),
            archive: Mutex::new(archive),
            data_checks,
            store,
            rewrites: Mutex::new(HashMap::new()),
            plugins_dir,
            log,
        })
    }

    /// The version serving `prefix` right now, pinned for the caller.
    pub fn route(&self, prefix: &str) -> Option<Arc<ModuleVersion>> {
        self.routes.load().by_prefix.get(prefix).cloned()
    }

    /// The version serving `prefix` for `player_id` ([`Routes::route`]: the module's canary if
    /// it has one that serves the player, else its version) and its module's migrator
    /// ([`Routes::migrator`]), from one snapshot, pinned for the caller.
    pub fn route_with_migrator(
        &self,
        prefix: &str,
        player_id: &str,
    ) -> Option<(Arc<ModuleVersion>, Option<Arc<ModuleVersion>>)> {
        let routes = self.routes.load();
        let version = routes.route(prefix, player_id)?.clone();
        let migrator = match routes.migrators.is_empty() {
            true => None,
            false => routes.migrators.get(&version.meta.name).cloned(),
        };
        Some((version, migrator))
    }

    /// The migrator kept for module `name` ([`Routes::migrator`]), pinned for the caller.
    pub fn migrator(&self, name: &str) -> Option<Arc<ModuleVersion>> {
        self.routes.load().migrators.get(name).cloned()
    }

    /// The current routing snapshot.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    pub fn executor(&self) -> &Executor {
        self.pipeline.executor()
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    pub fn retirement(&self) -> &Retirement {
        &self.retirement
    }

    pub fn plugins_dir(&self) -> &Path {
        &self.plugins_dir
    }

    /// Starts the task that drains, shuts down and unloads retired versions.
    pub fn spawn_retirement(&self) -> tokio::task::JoinHandle<()> {
        let retirement = self.retirement.clone();
        let executor = self.pipeline.executor().clone();
        tokio::spawn(retirement.run(executor, self.events.clone(), self.log.clone()))
    }

    /// The previous versions kept for rollback of `module`, newest first.
    pub fn history(&self, module: &str) -> Vec<Kept> {
        self.archive().previous(module)
    }

    /// The last saved-data check of each module that had one (the admin API).
    pub fn data_checks(&self) -> Vec<DataCheckReport> {
        self.data_checks.reports()
    }

    fn archive(&self) -> MutexGuard<'_, Archive> {
        self.archive.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings the served modules in line with the plugins directory: loads new and changed
    /// libraries (in file-name order), retires modules whose file is gone.
    pub async fn rescan(&self) -> std::io::Result<ScanReport> {
        std::fs::create_dir_all(&self.plugins_dir)?;
        let mut report = ScanReport::default();
        for file in library_files(&self.plugins_dir)? {
            match self.load_file(&file).await {
                Change::Loaded { module, .. } | Change::Swapped { module, .. } => {
                    report.loaded.push(module)
                }
                Change::Refused(reason) => report.refused.push((file, reason)),
                Change::Unchanged | Change::Removed { .. } => {}
            }
        }
        for version in self.routes().versions() {
            if !version.meta.file.exists() {
                self.remove_file(&version.meta.file).await;
            }
        }
        Ok(report)
    }

    /// Loads `file` beside what serves, and swaps it in if it passes every check.
    pub async fn load_file(&self, file: &Path) -> Change {
        let control = self.control.lock().await;
        self.load_file_locked(control, file).await
    }

    /// [`Registry::load_file`], trying again content that was refused (an operator's reload:
    /// what was refused may pass now, its stored data fixed or its database back).
    pub async fn reload_file(&self, file: &Path) -> Change {
        let mut control = self.control.lock().await;
        control.refused.remove(file);
        control.refused_tables.remove(file);
        self.load_file_locked(control, file).await
    }

    async fn load_file_locked(
        &self,
        mut control: tokio::sync::MutexGuard<'_, Control>,
        file: &Path,
    ) -> Change {
        let opened = match self.pipeline.read(file) {
            Ok(opened) => opened,
            Err(e) => return self.refuse(&mut control, file, None, e.to_string()),
        };
        let sha256 = super::loader::sha256_hex(&opened.bytes);
        let routes = self.routes();
        let serving = routes.by_file(file).cloned();
        // The tables folder of the module the file serves, as it is now.
        let folder_sha256 = serving.as_ref().and_then(|v| self.tables_now(&v.meta.name));
        let unchanged = serving.as_ref().is_some_and(|v| {
            v.meta.sha256 == sha256
                && (!v.meta.tables
                    || v.tables.as_ref().map(|t| &t.sha256) == folder_sha256.as_ref())
        });
        if unchanged
            || control.refused.get(file) == Some(&sha256)
            || control.refused_tables.get(file)
                == Some(&identity(&sha256, folder_sha256.as_deref()))
        {
            return Change::Unchanged;
        }
        if let Err(untrusted) = self.pipeline.admit(file, &opened) {
            // Not remembered by content: a `chmod`, a `chown` or a new `.sig` fixes it without
            // changing a byte, and the next event or rescan must try again.
            return self.refuse(&mut control, file, None, untrusted.to_string());
        }
        self.swap_in(&mut control, file, opened.bytes, sha256, &routes, serving)
            .await
    }

    /// Loads `bytes` (of `sha256`) as the module of `file` with its tables as they are now,
    /// beside `serving`, and swaps it in; or refuses it, remembering why: a library refused
    /// for itself is not tried again until the file changes, one refused for its tables until
    /// the file or the tables change.
    async fn swap_in(
        &self,
        control: &mut Control,
        file: &Path,
        bytes: Vec<u8>,
        sha256: String,
        routes: &Routes,
        serving: Option<Arc<ModuleVersion>>,
    ) -> Change {
        let opened = self
            .open_checked(control, file, bytes.clone(), None, routes, serving.as_ref())
            .await;
        match opened {
            Ok((version, tables)) => {
                control.refused.remove(file);
                control.refused_tables.remove(file);
                self.archive().keep(&version.meta, &bytes, tables.as_ref());
                self.publish(version, serving, EventKind::Load)
            }
            Err(refused) => {
                if let Refused::Untrusted(_) = &refused {
                    // Not remembered: a `chmod` or `chown` fixes it without changing a byte.
                    return self.refuse(control, file, None, refused.to_string());
                }
                if let Refused::Tables { name, .. } = &refused {
                    let tables = self.tables_now(name);
                    control
                        .refused_tables
                        .insert(file.to_owned(), identity(&sha256, tables.as_deref()));
                    return self.refuse(control, file, None, refused.to_string());
                }
                self.refuse(control, file, Some(sha256), refused.to_string())
            }
        }
    }

    /// The hash of module `name`'s tables folder as it is now (a missing folder is an empty
    /// set, as the pipeline reads it), if it reads.
    fn tables_now(&self, name: &str) -> Option<String> {
        TableSet::read(&tables::folder(&self.plugins_dir, name))
            .ok()
            .map(|set| set.sha256)
    }

    /// A file in module `name`'s tables folder changed. A library in the module's file that
    /// neither serves nor is kept out (refused, or rolled back from) is tried with the new
    /// tables: it may be waiting for them. Otherwise the serving library, from the archive,
    /// is loaded again with them (a rollback stays rolled back). A module not serving is
    /// retried by a rescan.
    pub async fn tables_changed(&self, name: &str) {
        let mut control = self.control.lock().await;
        let routes = self.routes();
        let Some(serving) = routes.by_name(name).cloned() else {
            drop(control);
            if let Err(e) = self.rescan().await {
                slog::warn!(self.log, "rescan after a tables change failed"; "error" => %e);
            }
            return;
        };
        let file = serving.meta.file.clone();
        if let Ok(opened) = self.pipeline.read(&file) {
            let sha256 = super::loader::sha256_hex(&opened.bytes);
            if sha256 != serving.meta.sha256 && control.refused.get(&file) != Some(&sha256) {
                self.load_file_locked(control, &file).await;
                return;
            }
        }
        let folder_sha256 = self.tables_now(name);
        let read = serving.tables.as_ref().map(|t| &t.sha256);
        let current = identity(&serving.meta.sha256, folder_sha256.as_deref());
        if !serving.meta.tables
            || read == folder_sha256.as_ref()
            || control.refused_tables.get(&file) == Some(&current)
        {
            return;
        }
        let kept = self.archive().kept_library(name, &serving.meta.sha256);
        let bytes = kept.and_then(|library| std::fs::read(library).ok());
        let Some(bytes) = bytes.filter(|b| super::loader::sha256_hex(b) == serving.meta.sha256)
        else {
            slog::warn!(self.log, "tables changed, but the serving library is not archived: reload the module to load it with them";
                "module" => name);
            return;
        };
        let sha256 = serving.meta.sha256.clone();
        self.swap_in(&mut control, &file, bytes, sha256, &routes, Some(serving))
            .await;
    }

    /// Stops serving the module loaded from `file`; it drains and retires.
    pub async fn remove_file(&self, file: &Path) -> Change {
        let _control = self.control.lock().await;
        let routes = self.routes();
        let Some(version) = routes.by_file(file).cloned() else {
            return Change::Unchanged;
        };
        let mut next = Routes::clone(&routes);
        next.by_prefix.remove(&version.meta.prefix);
        let migrator = next.migrators.remove(&version.meta.name);
        // A canary serves beside its module's version, never alone.
        let canary = next.canaries.remove(&version.meta.prefix);
        self.routes.store(Arc::new(next));
        if let Some(canary) = canary {
            self.retirement.retire(canary.version);
        }
        slog::info!(self.log, "module removed"; "module" => &version.meta.name, "file" => %file.display());
        self.events.push(Event::about(
            EventKind::Remove,
            &version,
            "its library left the plugins directory; draining",
        ));
        let module = version.meta.name.clone();
        self.retirement.retire(version);
        if let Some(migrator) = migrator {
            self.retirement.retire(migrator);
        }
        Change::Removed { module }
    }

    /// Serves `module`'s previous good version again, from the archive. The version rolled
    /// back from is not loaded again from the plugins directory until that file changes.
    pub async fn rollback(&self, module: &str) -> Result<Change, RollbackError> {
        let mut control = self.control.lock().await;
        let routes = self.routes();
        let serving = routes
            .by_name(module)
            .cloned()
            .ok_or_else(|| RollbackError::NotServing(module.to_owned()))?;
        // Forgotten from the archive only once the rollback is done: a refused one changes
        // nothing.
        let previous = self
            .archive()
            .previous_of(module, &serving.identity())
            .ok_or_else(|| RollbackError::NothingKept(module.to_owned()))?;
        let archived = previous.library.clone();
        let bytes = std::fs::read(&archived).map_err(|source| RollbackError::Unreadable {
            file: archived.clone(),
            source,
        })?;
        // The archive holds bytes that were admitted when they served; the name is their
        // sha256, so a file changed on disk since is caught here.
        if super::loader::sha256_hex(&bytes) != previous.sha256 {
            return Err(RollbackError::Changed(archived));
        }
        let file = serving.meta.file.clone();
        let opened = self
            .open_checked(
                &mut control,
                &file,
                bytes,
                previous.tables.as_deref(),
                &routes,
                Some(&serving),
            )
            .await;
        match opened {
            Ok((version, _)) => {
                // The tables must be those the version read when it served.
                let read = version.tables.as_ref().map(|t| t.sha256.clone());
                if read != previous.tables_sha256 {
                    self.retirement.retire(version);
                    return Err(RollbackError::Changed(
                        previous.tables.unwrap_or(previous.library),
                    ));
                }
                self.archive().forget(module, &serving.identity());
                // The library rolled back from stays out until the file holds another one
                // (a tables change loads the serving library with them: `tables_changed`).
                control.refused.insert(file, serving.meta.sha256.clone());
                Ok(self.publish(version, Some(serving), EventKind::Rollback))
            }
            Err(refused) => Err(RollbackError::Refused(Box::new(refused))),
        }
    }

    /// Opens `bytes` through the pipeline as the module of `file` (it may take the place of
    /// `replacing`), checks the stored data if its saved-data schema is not `replacing`'s, and
    /// numbers it: its generation counts loads of its name since start.
    async fn open_checked(
        &self,
        control: &mut Control,
        file: &Path,
        bytes: Vec<u8>,
        tables_from: Option<&Path>,
        routes: &Routes,
        replacing: Option<&Arc<ModuleVersion>>,
    ) -> Result<(Arc<ModuleVersion>, Option<TableSet>), Refused> {
        let leaked = self.retirement.leaked().len();
        let (mut version, tables) = self
            .pipeline
            .open(
                file,
                bytes,
                tables_from,
                routes,
                replacing.map(Arc::as_ref),
                leaked,
            )
            .await?;
        let generation = control
            .generations
            .entry(version.meta.name.clone())
            .or_default();
        *generation += 1;
        version.generation = *generation;
        let version = Arc::new(version);
        if let Some(serving) = replacing {
            if let Err(refused) = self.check_saved_data(&version, serving, routes).await {
                // Retirement runs its shutdown hook only once no step of it runs any more.
                self.retirement.retire(version);
                return Err(refused);
            }
        }
        Ok((version, tables))
    }

    /// When `version` writes another saved-data schema than `serving`, checks the module's
    /// stored data with the migrations between them ([`super::data_check`]).
    async fn check_saved_data(
        &self,
        version: &Arc<ModuleVersion>,
        serving: &Arc<ModuleVersion>,
        routes: &Routes,
    ) -> Result<(), Refused> {
        let name = &version.meta.name;
        // A library that now declares another module has none of this one's data to read.
        if version.meta.schema == serving.meta.schema || &serving.meta.name != name {
            return Ok(());
        }
        // Data newer than the incoming version reads is downgraded by the loaded version of the
        // highest schema above it (on a tie, the serving one: it is what wrote the data).
        let newer = [routes.migrator(name), Some(serving)]
            .into_iter()
            .flatten()
            .filter(|v| v.meta.schema > version.meta.schema)
            .max_by_key(|v| v.meta.schema)
            .cloned();
        slog::info!(self.log, "checking stored saved data before the swap";
            "module" => name, "schema" => version.meta.schema, "serving_schema" => serving.meta.schema);
        let config = self.pipeline.config();
        let swap = Swap {
            incoming: version,
            serving_schema: serving.meta.schema,
            newer,
            deadline: config.call_timeout(name),
            deadline_setting: config.call_timeout_setting(name),
        };
        if let Some(report) = self.data_checks.run(self.pipeline.executor(), swap).await? {
            self.events.push(Event::about(
                EventKind::Check,
                version,
                format!(
                    "saved data of {} players checked from schema {} to {} and back{}",
                    report.checked,
                    report.from_schema,
                    report.to_schema,
                    report.sample_note()
                ),
            ));
        }
        Ok(())
    }

    /// Swaps `version` in, in place of `replacing` (which then drains), and says so. When
    /// `version` steps back to an older saved-data schema, the version with the highest schema
    /// among `replacing` and the module's migrator stays loaded as its migrator; versions no
    /// longer needed retire.
    fn publish(
        &self,
        version: Arc<ModuleVersion>,
        replacing: Option<Arc<ModuleVersion>>,
        kind: EventKind,
    ) -> Change {
        let mut next = Routes::clone(&self.routes());
        if let Some(old) = &replacing {
            next.by_prefix.remove(&old.meta.prefix);
        }
        next.by_prefix
            .insert(version.meta.prefix.clone(), version.clone());
        let name = &version.meta.name;
        // A library that declares another module than the one it replaces: the old module's
        // migrator leaves with it, and it is not the new module's migrator.
        let renamed = replacing.as_ref().filter(|old| &old.meta.name != name);
        let orphan = renamed.and_then(|old| next.migrators.remove(&old.meta.name));
        let old_migrator = next.migrators.remove(name);
        let predecessor = replacing.clone().filter(|old| &old.meta.name == name);
        let migrator = [predecessor, old_migrator.clone()]
            .into_iter()
            .flatten()
            .filter(|m| m.meta.schema > version.meta.schema)
            .max_by_key(|m| m.meta.schema);
        if let Some(migrator) = &migrator {
            next.migrators.insert(name.clone(), migrator.clone());
        }
        // A canary stays beside the new version only on its prefix and saved-data schema.
        let stale_canary = replacing.as_ref().and_then(|old| {
            let canary = next.canaries.get(&old.meta.prefix)?;
            let fits = old.meta.prefix == version.meta.prefix
                && canary.version.meta.schema == version.meta.schema;
            match fits {
                true => None,
                false => next.canaries.remove(&old.meta.prefix),
            }
        });
        self.routes.store(Arc::new(next));
        if let Some(canary) = stale_canary {
            self.retirement.retire(canary.version);
        }
        let kept = |v: &Arc<ModuleVersion>| migrator.as_ref().is_some_and(|m| Arc::ptr_eq(m, v));
        let (module, generation) = (version.meta.name.clone(), version.generation);
        let meta = &version.meta;
        let kind = if replacing.is_some() && kind == EventKind::Load {
            EventKind::Swap
        } else {
            kind
        };
        slog::info!(self.log, "module serving";
            "event" => ?kind, "module" => &meta.name, "prefix" => &meta.prefix, "version" => &meta.version,
            "generation" => generation, "commands" => meta.commands.join(","), "file" => %meta.file.display(),
            "sha256" => &meta.sha256);
        self.events.push(Event::about(
            kind,
            &version,
            format!("serving from {}", meta.file.display()),
        ));
        for old in [old_migrator, orphan].into_iter().flatten() {
            if !kept(&old) {
                self.retirement.retire(old);
            }
        }
        self.start_rewrite(&version, migrator.clone());
        match replacing {
            Some(old) => {
                let kept_as_migrator = if kept(&old) {
                    format!(
                        "; kept loaded to downgrade saved data of schema {} for it",
                        old.meta.schema
                    )
                } else {
                    String::new()
                };
                self.events.push(Event::about(
                    EventKind::Drain,
                    &old,
                    format!("replaced by generation {generation}{kept_as_migrator}"),
                ));
                if !kept(&old) {
                    self.retirement.retire(old);
                }
                Change::Swapped { module, generation }
            }
            None => Change::Loaded { module, generation },
        }
    }

    /// Stops the module's rewrite of stored data, if one runs, and starts one if `version`
    /// has a `migrator` (it stepped back to an older schema): [`super::rewrite`].
    fn start_rewrite(&self, version: &ModuleVersion, migrator: Option<Arc<ModuleVersion>>) {
        let name = version.meta.name.clone();
        let mut rewrites = self.rewrites.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = rewrites.remove(&name) {
            running.store(true, Ordering::Relaxed);
        }
        let Some(migrator) = migrator else {
            return;
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        rewrites.insert(name.clone(), cancelled.clone());
        let config = self.pipeline.config();
        let rewrite = Rewrite {
            module: name.clone(),
            to: version.meta.schema,
            limits: CallLimits {
                deadline: config.call_timeout(&name),
                max_stuck: config.plugins.max_stuck_calls,
            },
            migrator,
        };
        let (store, executor, events, log) = (
            self.store.clone(),
            self.pipeline.executor().clone(),
            self.events.clone(),
            self.log.clone(),
        );
        let about = Event::about(EventKind::Rewrite, version, String::new());
        tokio::spawn(async move {
            let report = rewrite::run(store.as_ref(), &executor, &rewrite, &cancelled).await;
            let failed = report.first_failure.as_ref().map_or(String::new(), |f| {
                format!(
                    "; {} failed and stay on the migrator, for example player {}: {}",
                    report.failed, f.player_id, f.reason
                )
            });
            let stopped = report.stopped.as_ref().map_or(String::new(), |why| {
                format!("; stopped before the end: {why}")
            });
            let message = format!(
                "saved data of a newer schema rewritten at schema {} for {} of {} players ({} changed meanwhile by their own commands){failed}{stopped}",
                rewrite.to, report.rewritten, report.read, report.changed_meanwhile
            );
            slog::info!(log, "saved data rewritten after a step back";
                "module" => &rewrite.module, "schema" => rewrite.to, "rewritten" => report.rewritten,
                "read" => report.read, "failed" => report.failed, "stopped" => report.stopped.as_deref());
            events.push(Event { message, ..about });
        });
    }

    fn refuse(
        &self,
        control: &mut Control,
        file: &Path,
        sha256: Option<String>,
        reason: String,
    ) -> Change {
        slog::error!(self.log, "module refused; what serves stays"; "file" => %file.display(), "reason" => &reason);
        self.events
            .push(Event::file(EventKind::Refuse, file, reason.clone()));
        if let Some(sha256) = sha256 {
            control.refused.insert(file.to_owned(), sha256);
        }
        Change::Refused(reason)
    }

    /// Stops serving, runs every module's shutdown hook, joins the module threads, and unloads
    /// the libraries that nothing pins any more. Blocks for up to `deadline`.
    pub fn shutdown(&self, deadline: Instant) {
        let routes = self.routes.swap(Arc::new(Routes::default()));
        let mut versions = routes.versions();
        versions.extend(routes.migrators.values().cloned());
        versions.extend(routes.canaries.values().map(|c| c.version.clone()));
        drop(routes);
        versions.extend(self.retirement.take_all());
        for version in versions {
            let name = version.meta.name.clone();
            if self
                .pipeline
                .executor()
                .run_blocking(move || version.shutdown())
                .is_ok()
            {
                slog::info!(self.log, "module shut down"; "module" => name);
            }
        }
        let stuck = self.pipeline.executor().shutdown(deadline);
        if stuck > 0 {
            slog::error!(self.log, "module calls still running at shutdown; their libraries stay loaded"; "calls" => stuck);
        }
    }
}

/// The `*.so` files directly in `dir`, sorted by name so that the load order is stable.
pub fn library_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_library(path) && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a path is named like a module library (`*.so`); temporary files of editors,
/// `rsync` and `cp`-then-rename (`.libx.so.XYZ`, `libx.so.tmp`, `libx.so~`) are not.
pub fn is_library(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "so")
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
}
