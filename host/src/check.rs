//! `game-host check FILE.so`: loads and checks one library without serving, through the same
//! load pipeline as the host ([`crate::plugins::pipeline`]), and says what it is or why it
//! would be refused.
//!
//! The trust checks come first, with the config's `[trust]` ([`crate::plugins::trust`]):
//! permissions are judged for the user who runs `check` (the host's user, on the server), and
//! with `require_signature` the library needs its `.sig`. The init hook runs under
//! `plugins.init_timeout_ms`, as in the host. The copy it loads goes to a fresh private
//! directory (mode 0700, a random name) under the system's temporary directory.
//!
//! A module with data tables reads them from its tables folder beside the file
//! (`<module>.tables/`), as the host would, or from the folder `--tables` names.
//!
//! Given a database (`--database-url`), it also runs the saved-data check a swap runs
//! ([`crate::plugins::data_check`]) over that database's stored data of the module: every
//! player's data must go up to the library's schema and back unchanged. It opens the database
//! as the host does (bringing the host's tables up to date) and writes no player's data.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::plugins::data_check::{DataCheckReport, DataChecks, Swap};
use crate::plugins::executor::Executor;
use crate::plugins::pipeline::Pipeline;
use crate::plugins::trust::Trust;
use crate::plugins::version::LoadedTables;
use crate::plugins::{ModuleMeta, Refused, Routes};
use crate::store::{self, DatabaseUrl};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `check` found: the module, and the key that signed it when signatures are required.
#[derive(Debug, Clone)]
pub struct Checked {
    pub meta: ModuleMeta,
    pub signed_by: Option<String>,
    /// The saved-data check over the database given, if one was.
    pub data_check: Option<DataCheckReport>,
    /// The data tables it read (from its tables folder beside the file), if it has any.
    pub tables: Option<LoadedTables>,
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
    /// The database given cannot be opened: the library's saved-data check did not run.
    #[error("cannot open the database to check saved data against: {0}")]
    Database(String),
    /// `check` itself could not run: nothing is known of the library.
    #[error("cannot check {}: {what}: {source}", file.display())]
    Setup {
        file: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

/// Judges, loads, checks and initializes `file`, checks its migrations over the stored data of
/// `database` if given, then shuts it down and unloads it. Module code runs on a module
/// thread, as it would in the host.
pub async fn check(
    file: &Path,
    config: &Config,
    log: &slog::Logger,
    database: Option<&DatabaseUrl>,
    tables: Option<&Path>,
) -> Result<Checked, CheckError> {
    let setup = |what| {
        let file = file.to_owned();
        move |source| CheckError::Setup { file, what, source }
    };
    // No lock on a SQLite file (`store::sqlite::lock`), unlike `serve`: the lock keeps a second
    // host from overwriting players from its memory, and `check` keeps none and writes no
    // player's data; its reads take SQLite's own locks. An operator checks a library against
    // the live database, while its host serves, before installing it: refusing then would
    // leave only a copy of the file to check against.
    let store = match database {
        Some(url) => Some(
            store::open(url, &config.pool_settings(), config.sqlite_options())
                .await
                .map_err(|e| CheckError::Database(e.to_string()))?,
        ),
        None => None,
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
        let (version, _) = pipeline
            .open(file, opened.bytes, tables, &Routes::default(), None, 0)
            .await?;
        let meta = version.meta.clone();
        let tables = version.tables.clone();
        let version = Arc::new(version);
        let data_check = match &store {
            Some(store) => {
                let checks = DataChecks::new(
                    Some(store.clone()),
                    config.plugins.migration_check_max_players,
                );
                let swap = Swap {
                    incoming: &version,
                    serving_schema: meta.schema,
                    newer: None,
                    deadline: config.call_timeout(&meta.name),
                    deadline_setting: config.call_timeout_setting(&meta.name),
                };
                let checked = checks.run(&executor, swap).await;
                pipeline.discard(version).await;
                checked?
            }
            None => {
                pipeline.discard(version).await;
                None
            }
        };
        Ok::<_, Refused>(Checked {
            meta,
            signed_by: admitted.signed_by,
            data_check,
            tables,
        })
    }
    .await;
    if let Some(store) = store {
        let _ = store.close().await;
    }
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
pub(crate) fn private_dir() -> std::io::Result<PathBuf> {
    let mut name = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut name);
    let dir = std::env::temp_dir().join(format!("game-host-check-{}", hex::encode(name)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}
