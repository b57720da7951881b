//! `game-host check FILE.so`: loads and checks one library without serving, the way the host
//! would, and says what it is or why it would be refused.
//!
//! The trust checks come first, with the config's `[trust]` ([`crate::plugins::trust`]):
//! permissions are judged for the user who runs `check` (the host's user, on the server), and
//! with `require_signature` the library needs its `.sig`. The copy it loads goes to a fresh
//! private directory (mode 0700, a random name) under the system's temporary directory.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::plugins::executor::Executor;
use crate::plugins::trust::{self, Trust};
use crate::plugins::{ModuleMeta, ModuleVersion, Refused};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `check` found: the module, and the key that signed it when signatures are required.
#[derive(Debug, Clone)]
pub struct Checked {
    pub meta: ModuleMeta,
    pub signed_by: Option<String>,
}

/// Judges, loads, checks and initializes `file`, then shuts it down and unloads it.
/// Module code runs on a worker thread, as it would in the host.
pub fn check(file: &Path, config: &Config, log: &slog::Logger) -> Result<Checked, Refused> {
    let trust = Trust::from_config(&config.trust)?;
    let opened = trust::read(file)?;
    let admitted = trust.admit(file, &opened)?;
    let cannot = |reason: String| Refused::InitFailed {
        file: file.to_owned(),
        name: String::new(),
        reason,
    };
    let executor =
        Executor::start(1).map_err(|e| cannot(format!("cannot start a worker thread: {e}")))?;
    let shadow_dir =
        private_dir().map_err(|e| cannot(format!("cannot make a private directory: {e}")))?;
    let (file_owned, shadow, log, config) = (
        file.to_owned(),
        shadow_dir.clone(),
        log.clone(),
        config.clone(),
    );
    let checked = trust
        .check_shadow_dir(file, &shadow_dir)
        .map_err(Refused::from)
        .and_then(|()| {
            executor.run_blocking(move || {
                let version = ModuleVersion::open(
                    &file_owned,
                    &opened.bytes,
                    &shadow,
                    &log,
                    Arc::new(SystemClock),
                    |name| config.module_config_json(name),
                )?;
                version.init()?;
                version.shutdown();
                Ok(version.meta.clone())
            })?
        });
    executor.shutdown(Instant::now() + Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&shadow_dir);
    Ok(Checked {
        meta: checked?,
        signed_by: admitted.signed_by,
    })
}

/// A new directory only this user can enter, under a name nobody could have guessed (a
/// predictable name in a shared `/tmp` could be created first by someone else).
fn private_dir() -> std::io::Result<PathBuf> {
    let mut name = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut name);
    let dir = std::env::temp_dir().join(format!("game-host-check-{}", hex::encode(name)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}
