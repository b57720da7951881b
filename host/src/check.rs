//! `game-host check FILE.so`: loads and checks one library without serving, through the same
//! load pipeline as the host ([`crate::plugins::pipeline`]), and says what it is or why it
//! would be refused.
//!
//! The trust checks come first, with the config's `[trust]` ([`crate::plugins::trust`]):
//! permissions are judged for the user who runs `check` (the host's user, on the server), and
//! with `require_signature` the library needs its `.sig`. The init hook runs under
//! `plugins.init_timeout_ms`, as in the host. The copy it loads goes to a fresh private
//! directory (mode 0700, a random name) under the system's temporary directory.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::plugins::executor::Executor;
use crate::plugins::pipeline::Pipeline;
use crate::plugins::trust::Trust;
use crate::plugins::{ModuleMeta, Refused, Routes};
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

/// Why `check` has no verdict on the library, or the host's refusal of it.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The host would refuse the library.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The config's `[trust]` cannot be used (a key that cannot be read, ...): nothing is
    /// known of the library.
    #[error("the config's [trust] cannot be used: {0}")]
    Trust(#[from] crate::plugins::trust::Untrusted),
    /// `check` itself could not run: nothing is known of the library.
    #[error("cannot check {}: {what}: {source}", file.display())]
    Setup {
        file: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

/// Judges, loads, checks and initializes `file`, then shuts it down and unloads it. Module
/// code runs on a module thread, as it would in the host.
pub async fn check(
    file: &Path,
    config: &Config,
    log: &slog::Logger,
) -> Result<Checked, CheckError> {
    let setup = |what| {
        let file = file.to_owned();
        move |source| CheckError::Setup { file, what, source }
    };
    let trust = Trust::from_config(&config.trust)?;
    let executor = Arc::new(Executor::start(1).map_err(setup("cannot start a module thread"))?);
    let shadow_dir = private_dir().map_err(setup("cannot make a private directory"))?;
    let pipeline = Pipeline::new(
        trust,
        executor.clone(),
        shadow_dir.clone(),
        Arc::new(config.clone()),
        Arc::new(SystemClock),
        log.clone(),
    );
    let checked = async {
        let opened = pipeline.read(file)?;
        let admitted = pipeline.admit(file, &opened)?;
        let version = pipeline
            .open(file, opened.bytes, &Routes::default(), None, 0)
            .await?;
        let meta = version.meta.clone();
        executor.run(move || version.shutdown()).await?;
        Ok::<_, Refused>(Checked {
            meta,
            signed_by: admitted.signed_by,
        })
    }
    .await;
    let executor_done = executor.clone();
    let _ = tokio::task::spawn_blocking(move || {
        executor_done.shutdown(Instant::now() + Duration::from_secs(5))
    })
    .await;
    let _ = std::fs::remove_dir_all(&shadow_dir);
    Ok(checked?)
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
