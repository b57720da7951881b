//! `game-host check FILE.so`: loads and checks one library without serving, the way the host
//! would, and says what it is or why it would be refused.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::plugins::executor::Executor;
use crate::plugins::{ModuleMeta, ModuleVersion, Refused};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Loads, checks and initializes `file`, then shuts it down and unloads it.
/// Module code runs on a worker thread, as it would in the host.
pub fn check(file: &Path, config: &Config, log: &slog::Logger) -> Result<ModuleMeta, Refused> {
    let executor = Executor::start(1).map_err(|e| Refused::InitFailed {
        file: file.to_owned(),
        name: String::new(),
        reason: format!("cannot start a worker thread: {e}"),
    })?;
    let shadow_dir = std::env::temp_dir().join(format!("game-host-check-{}", std::process::id()));
    let (file_owned, shadow, log, config) = (
        file.to_owned(),
        shadow_dir.clone(),
        log.clone(),
        config.clone(),
    );
    let checked = executor.run_blocking(move || {
        let bytes = std::fs::read(&file_owned).map_err(|e| Refused::InitFailed {
            file: file_owned.clone(),
            name: String::new(),
            reason: format!("cannot read it: {e}"),
        })?;
        let version = ModuleVersion::open(
            &file_owned,
            &bytes,
            &shadow,
            &log,
            Arc::new(SystemClock),
            |name| config.module_config_json(name),
        )?;
        version.init()?;
        version.shutdown();
        Ok(version.meta.clone())
    });
    executor.shutdown(Instant::now() + Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&shadow_dir);
    checked?
}
