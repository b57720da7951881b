//! The one load pipeline: how a library's bytes become a module version that may serve.
//!
//! Read once → trusted ([`super::trust`]) → within the reload budget ([`super::budget`]) →
//! a shadow copy opened and checked on a module thread ([`ModuleVersion::open`]) → its prefix
//! and name free, or its predecessor's → initialized under `plugins.init_timeout_ms`. Every
//! step that fails refuses the library with a reason that says what to do; nothing that
//! serves is touched here. The registry (start-up, file changes, reloads, rollbacks) and
//! `game-host check` both load through it, so a library `check` accepts is one the host
//! loads.

use super::budget;
use super::executor::{Executor, RunError};
use super::registry::Routes;
use super::tables::{self, TableSet};
use super::trust::{self, Admitted, Opened, Trust};
use super::version::{ModuleVersion, Refused};
use crate::clock::Clock;
use crate::config::Config;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// What the pipeline needs, fixed for a host's life (or a `check`'s).
pub struct Pipeline {
    /// Which files may be loaded at all (`[trust]`).
    trust: Trust,
    /// The module threads: module code runs nowhere else.
    executor: Arc<Executor>,
    /// Where shadow copies are written (mode 0700) before they are opened.
    shadow_dir: PathBuf,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    log: slog::Logger,
}

impl Pipeline {
    pub fn new(
        trust: Trust,
        executor: Arc<Executor>,
        shadow_dir: PathBuf,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
    ) -> Pipeline {
        Pipeline {
            trust,
            executor,
            shadow_dir,
            config,
            clock,
            log,
        }
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads `file` once, through one descriptor: the bytes every later step judges.
    pub fn read(&self, file: &Path) -> Result<Opened, Refused> {
        Ok(trust::read(file)?)
    }

    /// Whether the bytes read from `file` may be loaded: its path's permissions and, with
    /// `trust.require_signature`, its signature.
    pub fn admit(&self, file: &Path, opened: &Opened) -> Result<Admitted, Refused> {
        Ok(self.trust.admit(file, opened)?)
    }

    /// Opens `bytes` as the module of `file`, checks it against `routes` (it may take the
    /// place of `replacing`), initializes it and, if its module has data tables, has it read
    /// them: from `tables_from`, or else the module's tables folder beside `file`. Returns the
    /// tables as they were read, for the archive.
    /// `leaked_versions` are the versions that did not leave memory so far (the reload
    /// budget). Runs module code on a module thread.
    pub async fn open(
        &self,
        file: &Path,
        bytes: Vec<u8>,
        tables_from: Option<&Path>,
        routes: &Routes,
        replacing: Option<&ModuleVersion>,
        leaked_versions: usize,
    ) -> Result<(ModuleVersion, Option<TableSet>), Refused> {
        budget::check(leaked_versions, self.config.plugins.max_leaked_versions).map_err(
            |reason| Refused::Budget {
                file: file.to_owned(),
                reason,
            },
        )?;
        self.trust.check_shadow_dir(file, &self.shadow_dir)?;
        let (file_owned, shadow_dir, log, clock, config) = (
            file.to_owned(),
            self.shadow_dir.clone(),
            self.log.clone(),
            self.clock.clone(),
            self.config.clone(),
        );
        let version = self
            .executor
            .run(move || {
                ModuleVersion::open(&file_owned, &bytes, &shadow_dir, &log, clock, |name| {
                    config.module_config_json(name)
                })
            })
            .await??;
        if let Err(clash) = routes.check_clash(&version, replacing) {
            self.unload(version).await;
            return Err(clash);
        }
        let version = self.init_within_deadline(version).await?;
        let folder = match tables_from {
            Some(folder) => folder.to_owned(),
            None => tables::folder(file.parent().unwrap_or(Path::new(".")), &version.meta.name),
        };
        self.read_tables(version, &folder).await
    }

    /// Has `version` read its data tables from `folder`, under `plugins.init_timeout_ms`, if
    /// its module has any. Tables it refuses refuse it (its shutdown hook runs).
    async fn read_tables(
        &self,
        version: ModuleVersion,
        folder: &Path,
    ) -> Result<(ModuleVersion, Option<TableSet>), Refused> {
        if !version.meta.tables {
            return Ok((version, None));
        }
        let (file, name) = (version.meta.file.clone(), version.meta.name.clone());
        // A refusal of the tables as a whole (no file or line of them at fault).
        let refused = |reason: String| Refused::Tables {
            file: file.clone(),
            name: name.clone(),
            table: String::new(),
            line: None,
            reason,
        };
        let set = match TableSet::read(folder) {
            Ok(set) => set,
            Err(e) => {
                self.discard(Arc::new(version)).await;
                return Err(refused(e.to_string()));
            }
        };
        let names: Vec<&str> = set.files.iter().map(|(name, _)| name.as_str()).collect();
        if let Err(untrusted) = self.trust.check_tables(&file, folder, &names) {
            self.discard(Arc::new(version)).await;
            return Err(untrusted.into());
        }
        let timeout_ms = self.config.plugins.init_timeout_ms;
        let read = self
            .within_init_deadline(move || {
                let mut version = version;
                let read = version.load_tables(&set);
                (version, read, set)
            })
            .await;
        match read {
            Ok((version, Ok(()), set)) => Ok((version, Some(set))),
            Ok((version, Err(refusal), _)) => {
                self.discard(Arc::new(version)).await;
                Err(refusal)
            }
            Err(RunError::Closed(closed)) => Err(closed.into()),
            Err(RunError::Overdue | RunError::TooManyStuck(_)) => Err(refused(format!(
                "the module's table reader did not return within {timeout_ms} ms (plugins.init_timeout_ms); it stays in memory until it does"
            ))),
        }
    }

    /// Drops a version that will not serve on a module thread: unloading runs the library's
    /// finalizers, which are module code.
    async fn unload(&self, version: ModuleVersion) {
        let _ = self.executor.run(move || drop(version)).await;
    }

    /// Shuts down and drops an initialized version that will not serve (its tables refused, or
    /// `game-host check`'s), on a module thread. If a call of it still runs past its deadline, its shutdown hook does
    /// not run (the hook follows the last call), and that call drops it when it returns.
    pub async fn discard(&self, version: Arc<ModuleVersion>) {
        let Ok(version) = Arc::try_unwrap(version) else {
            return;
        };
        let _ = self
            .executor
            .run(move || {
                version.shutdown();
                drop(version);
            })
            .await;
    }

    /// Runs `job`, module code of a version being loaded, on a module thread under
    /// `plugins.init_timeout_ms`; past it, the job runs on (uncounted) until it returns.
    async fn within_init_deadline<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RunError> {
        let deadline = Duration::from_millis(self.config.plugins.init_timeout_ms);
        let not_counted = Arc::new(AtomicU64::new(0));
        self.executor
            .run_within(deadline, &not_counted, u64::MAX, job)
            .await
    }

    /// Runs `version`'s init hook under `plugins.init_timeout_ms`. An init that does not
    /// return in time refuses the library, so that the reload (and every later one, which
    /// waits for this one) goes on; the init runs on, holding the library, until it returns.
    async fn init_within_deadline(&self, version: ModuleVersion) -> Result<ModuleVersion, Refused> {
        let (file, name) = (version.meta.file.clone(), version.meta.name.clone());
        let timeout_ms = self.config.plugins.init_timeout_ms;
        let initialized = self
            .within_init_deadline(move || {
                let initialized = version.init();
                (version, initialized)
            })
            .await;
        match initialized {
            Ok((version, Ok(()))) => Ok(version),
            Ok((version, Err(refused))) => {
                self.unload(version).await;
                Err(refused)
            }
            Err(RunError::Closed(closed)) => Err(closed.into()),
            Err(RunError::Overdue | RunError::TooManyStuck(_)) => Err(Refused::InitFailed {
                file,
                name,
                reason: format!(
                    "its init did not return within {timeout_ms} ms (plugins.init_timeout_ms); it stays in memory until it does"
                ),
            }),
        }
    }
}
