//! The registry: which module version serves each prefix, and how that changes.
//!
//! The routing table is an immutable [`Routes`] snapshot behind `arc-swap`: a request loads
//! the current snapshot and clones the version it needs, without waiting on any lock; a change
//! builds a whole new snapshot and swaps it in. Start-up is a load from empty.

use super::executor::Executor;
use super::version::{ModuleVersion, Refused};
use crate::clock::Clock;
use crate::config::Config;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// One immutable routing snapshot: prefix to the version that serves it.
#[derive(Default)]
pub struct Routes {
    by_prefix: HashMap<String, Arc<ModuleVersion>>,
}

impl Routes {
    /// The serving versions, ordered by prefix.
    pub fn versions(&self) -> Vec<Arc<ModuleVersion>> {
        let mut versions: Vec<_> = self.by_prefix.values().cloned().collect();
        versions.sort_by(|a, b| a.meta.prefix.cmp(&b.meta.prefix));
        versions
    }
}

/// What a scan of the plugins directory did.
#[derive(Debug, Default, Clone)]
pub struct ScanReport {
    /// Names of the modules now serving.
    pub loaded: Vec<String>,
    /// Files refused, with why.
    pub refused: Vec<(PathBuf, String)>,
}

/// Owns the modules and the threads that run them.
pub struct Registry {
    routes: ArcSwap<Routes>,
    executor: Executor,
    plugins_dir: PathBuf,
    shadow_dir: PathBuf,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    log: slog::Logger,
}

impl Registry {
    /// An empty registry with its executor started.
    pub fn new(
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
    ) -> std::io::Result<Registry> {
        let shadow_dir = config.paths.data_dir.join("shadow");
        // Shadow copies are unlinked once loaded; anything here was left by a crashed run.
        let _ = std::fs::remove_dir_all(&shadow_dir);
        std::fs::create_dir_all(&shadow_dir)?;
        Ok(Registry {
            routes: ArcSwap::from_pointee(Routes::default()),
            executor: Executor::start(config.plugins.workers)?,
            plugins_dir: config.paths.plugins_dir.clone(),
            shadow_dir,
            config,
            clock,
            log,
        })
    }

    /// The version serving `prefix` right now, pinned for the caller.
    pub fn route(&self, prefix: &str) -> Option<Arc<ModuleVersion>> {
        self.routes.load().by_prefix.get(prefix).cloned()
    }

    /// The current routing snapshot.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Loads every `*.so` in the plugins directory, in file-name order, and serves those that
    /// pass every check. A refused file is logged with why; the others load. Blocks.
    pub fn load_all(&self) -> std::io::Result<ScanReport> {
        std::fs::create_dir_all(&self.plugins_dir)?;
        let mut routes = Routes::default();
        let mut report = ScanReport::default();
        for file in library_files(&self.plugins_dir)? {
            match self.load_one(&file, &routes) {
                Ok(version) => {
                    let meta = &version.meta;
                    slog::info!(self.log, "module loaded";
                        "module" => &meta.name, "prefix" => &meta.prefix, "version" => &meta.version,
                        "commands" => meta.commands.join(","), "file" => %file.display(), "sha256" => &meta.sha256);
                    report.loaded.push(meta.name.clone());
                    routes
                        .by_prefix
                        .insert(meta.prefix.clone(), Arc::new(version));
                }
                Err(refused) => {
                    slog::error!(self.log, "module refused"; "file" => %file.display(), "reason" => %refused);
                    report.refused.push((file, refused.to_string()));
                }
            }
        }
        self.routes.store(Arc::new(routes));
        Ok(report)
    }

    /// Opens, checks against what `routes` already serves, and initializes one library.
    fn load_one(&self, file: &Path, routes: &Routes) -> Result<ModuleVersion, Refused> {
        let (file, shadow_dir, log, clock) = (
            file.to_owned(),
            self.shadow_dir.clone(),
            self.log.clone(),
            self.clock.clone(),
        );
        let config = self.config.clone();
        let version = self.executor.run_blocking(move || {
            ModuleVersion::open(&file, &shadow_dir, &log, clock, |name| {
                config.module_config_json(name)
            })
        })??;
        check_clash(&version, routes)?;
        let (version, initialized) = self.executor.run_blocking(move || {
            let initialized = version.init();
            (version, initialized)
        })?;
        initialized.map(|()| version)
    }

    /// Stops serving, runs every module's shutdown hook, joins the module threads, and unloads
    /// the libraries that nothing pins any more. Blocks for up to `deadline`.
    pub fn shutdown(&self, deadline: Instant) {
        let routes = self.routes.swap(Arc::new(Routes::default()));
        for version in routes.versions() {
            let name = version.meta.name.clone();
            if self
                .executor
                .run_blocking(move || version.shutdown())
                .is_ok()
            {
                slog::info!(self.log, "module shut down"; "module" => name);
            }
        }
        let stuck = self.executor.shutdown(deadline);
        if stuck > 0 {
            slog::error!(self.log, "module calls still running at shutdown; their libraries stay loaded"; "calls" => stuck);
        }
        drop(routes);
    }
}

fn check_clash(version: &ModuleVersion, routes: &Routes) -> Result<(), Refused> {
    let meta = &version.meta;
    if let Some(owner) = routes.by_prefix.get(&meta.prefix) {
        return Err(Refused::PrefixTaken {
            file: meta.file.clone(),
            name: meta.name.clone(),
            prefix: meta.prefix.clone(),
            owner: owner.meta.name.clone(),
        });
    }
    match routes
        .by_prefix
        .values()
        .find(|other| other.meta.name == meta.name)
    {
        Some(other) => Err(Refused::NameTaken {
            file: meta.file.clone(),
            name: meta.name.clone(),
            other: other.meta.file.clone(),
        }),
        None => Ok(()),
    }
}

/// The `*.so` files directly in `dir`, sorted by name so that the load order is stable.
fn library_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "so"))
        .collect();
    files.sort();
    Ok(files)
}
