//! `game-host publish FILE…`: each library checked as `game-host check` does (trust, load,
//! init, its saved-data migrations over the database's stored data), then stored in the
//! database with its signature and data tables, and made its module's desired release.
//!
//! Nothing is stored for a file that fails its check; files are published one by one, in the
//! order given, so an error names the file and what was published before it stays published.

use crate::check::{self, CheckError};
use crate::config::Config;
use crate::plugins::tables::TableSet;
use crate::plugins::trust::signature::signature_path;
use crate::plugins::version::identity;
use crate::store::fleet::{pack, FleetChange, FleetOutcome, Release};
use crate::store::{self, AuditNote, DatabaseUrl, StoreError};
use std::path::{Path, PathBuf};

/// One library published.
#[derive(Debug, Clone)]
pub struct PublishedRelease {
    pub file: PathBuf,
    pub module: String,
    pub version: String,
    pub release: String,
    /// Changed or unchanged (a refusal stops the publish: [`PublishError::Refused`]).
    pub outcome: FleetOutcome,
}

/// Why a library was not published. (Each variant's cause is in its message, not a
/// `source`: the command line prints the whole chain, which would say it twice.)
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{}: not published: {error}", file.display())]
    Check { file: PathBuf, error: CheckError },
    #[error("{}: not published: cannot read {}: {error}", file.display(), path.display())]
    Read {
        file: PathBuf,
        path: PathBuf,
        error: String,
    },
    #[error("{}: not published: it is {size} bytes, over fleet.max_library_bytes ({max}); raise the limit (on MariaDB, with the server's max_allowed_packet)", file.display())]
    TooBig { file: PathBuf, size: u64, max: u64 },
    #[error("cannot open the database to publish into: {0}")]
    Open(String),
    #[error("{}: not published: the database refused it: {error}", file.display())]
    Store { file: PathBuf, error: StoreError },
    #[error("--tables names one library's tables: publish that library alone")]
    TablesForMany,
    #[error("{}: not published: {why}", file.display())]
    Refused { file: PathBuf, why: String },
}

/// How to publish: who and why, the tables folder (one library only), and the canary's share.
#[derive(Debug, Clone)]
pub struct PublishOptions<'a> {
    pub note: &'a AuditNote,
    /// The module's tables folder, if not `<module>.tables` beside the library.
    pub tables: Option<&'a Path>,
    /// Publish as a canary serving this percent of the players.
    pub canary: Option<u8>,
}

/// A publish that stopped on an error, and what it published before.
#[derive(Debug)]
pub struct Stopped {
    pub published: Vec<PublishedRelease>,
    pub error: PublishError,
}

/// Checks and publishes `files` into `database`, in order, as `options` say; stops at the
/// first file that cannot be published.
pub async fn publish(
    files: &[PathBuf],
    config: &Config,
    database: &DatabaseUrl,
    options: &PublishOptions<'_>,
    log: &slog::Logger,
) -> Result<Vec<PublishedRelease>, Stopped> {
    // No lock on a SQLite file: publishing writes only the release tables, which the serving
    // host reads through SQLite's own locks (as `check` does).
    let store = store::open(database, &config.pool_settings(), config.sqlite_options())
        .await
        .map_err(|e| Stopped {
            published: Vec::new(),
            error: PublishError::Open(e.to_string()),
        })?;
    if options.tables.is_some() && files.len() > 1 {
        return Err(Stopped {
            published: Vec::new(),
            error: PublishError::TablesForMany,
        });
    }
    let mut published = Vec::new();
    let mut error = None;
    for file in files {
        match publish_one(file, config, database, store.as_ref(), options, log).await {
            Ok(release) => published.push(release),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let _ = store.close().await;
    match error {
        None => Ok(published),
        Some(error) => Err(Stopped { published, error }),
    }
}

async fn publish_one(
    file: &Path,
    config: &Config,
    database: &DatabaseUrl,
    store: &dyn store::Store,
    options: &PublishOptions<'_>,
    log: &slog::Logger,
) -> Result<PublishedRelease, PublishError> {
    let PublishOptions {
        note,
        tables,
        canary,
    } = *options;
    let size = std::fs::metadata(file)
        .map_err(|e| unreadable(file, file, e))?
        .len();
    let max = config.fleet.max_library_bytes;
    if size > max {
        return Err(PublishError::TooBig {
            file: file.to_owned(),
            size,
            max,
        });
    }
    let checked = check::check(file, config, log, Some(database), tables)
        .await
        .map_err(|error| PublishError::Check {
            file: file.to_owned(),
            error,
        })?;
    let library = std::fs::read(file).map_err(|e| unreadable(file, file, e))?;
    let sha256 = crate::plugins::loader::sha256_hex(&library);
    // Only the bytes checked are published: a build that rewrote the file meanwhile is not.
    if sha256 != checked.meta.sha256 {
        return Err(unreadable(
            file,
            file,
            "it changed while it was checked: publish again",
        ));
    }
    let signature_file = signature_path(file);
    let signature = match std::fs::read(&signature_file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(unreadable(file, &signature_file, e)),
    };
    // The tables the check read, read again to be stored: the folder given, or the one beside
    // the library, as the host reads it. Stored only if they are the ones checked.
    let tables = match &checked.tables {
        Some(loaded) => {
            let folder = match tables {
                Some(folder) => folder.to_owned(),
                None => crate::plugins::tables::folder(
                    file.parent().unwrap_or(Path::new(".")),
                    &checked.meta.name,
                ),
            };
            let set = TableSet::read(&folder).map_err(|e| unreadable(file, &folder, e))?;
            if set.sha256 != loaded.sha256 {
                return Err(unreadable(
                    file,
                    &folder,
                    "the tables changed while they were checked: publish again",
                ));
            }
            Some(set)
        }
        None => None,
    };
    let release = Release {
        id: identity(&sha256, tables.as_ref().map(|t| t.sha256.as_str())),
        module: checked.meta.name.clone(),
        version: checked.meta.version.clone(),
        library_zlib: pack(&library),
        signature,
        tables: tables.map(|t| t.files),
    };
    let outcome = store
        .fleet()
        .change(
            &release.module,
            &FleetChange::Publish { canary },
            Some(&release),
            note,
            config.fleet.retention(),
        )
        .await
        .map_err(|error| PublishError::Store {
            file: file.to_owned(),
            error,
        })?;
    if let FleetOutcome::Refused(why) = outcome {
        return Err(PublishError::Refused {
            file: file.to_owned(),
            why,
        });
    }
    Ok(PublishedRelease {
        file: file.to_owned(),
        module: release.module,
        version: release.version,
        release: release.id,
        outcome,
    })
}

/// `file` not published: `path` (the library, its signature or tables) cannot be read.
fn unreadable(file: &Path, path: &Path, error: impl std::fmt::Display) -> PublishError {
    PublishError::Read {
        file: file.to_owned(),
        path: path.to_owned(),
        error: error.to_string(),
    }
}
