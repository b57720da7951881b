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
    /// place of `replacing`) and initializes it. `leaked_versions` are the versions that did
    /// not leave memory so far (the reload budget). Runs module code on a module thread.
    pub async fn open(
        &self,
        file: &Path,
        bytes: Vec<u8>,
        routes: &Routes,
        replacing: Option<&ModuleVersion>,
        leaked_versions: usize,
    ) -> Result<ModuleVersion, Refused> {
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
        self.init_within_deadline(version).await
    }

    /// Drops a version that will not serve on a module thread: unloading runs the library's
    /// finalizers, which are module code.
    async fn unload(&self, version: ModuleVersion) {
        let _ = self.executor.run(move || drop(version)).await;
    }

    /// Shuts down and drops an initialized version that will not serve (`game-host check`'s),
    /// on a module thread. If a call of it still runs past its deadline, its shutdown hook does
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

    /// Runs `version`'s init hook under `plugins.init_timeout_ms`. An init that does not
    /// return in time refuses the library, so that the reload (and every later one, which
    /// waits for this one) goes on; the init runs on, holding the library, until it returns.
    async fn init_within_deadline(&self, version: ModuleVersion) -> Result<ModuleVersion, Refused> {
        let (file, name) = (version.meta.file.clone(), version.meta.name.clone());
        let timeout_ms = self.config.plugins.init_timeout_ms;
        let not_counted = Arc::new(AtomicU64::new(0));
        let initialized = self
            .executor
            .run_within(
                Duration::from_millis(timeout_ms),
                &not_counted,
                u64::MAX,
                move || {
                    let initialized = version.init();
                    (version, initialized)
                },
            )
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
