//! The serving host's claim on its SQLite database: an exclusive lock on `<database>.lock`
//! beside the file (`flock`, through std's [`File::try_lock`]), held for as long as the
//! process serves, so that a second host on the same file is refused at start.
//!
//! Why a lock of our own: the embedded store answers turns from its memory of the players
//! (`cache.rs`) while it is the file's only writer, so a second host writing the same file
//! would have its changes overwritten by the first host's next turn from stale memory: a lost
//! update, not only a slow one. SQLite's own locks order transactions; they cannot see that.
//!
//! An `flock` lock belongs to the open file description, not to the process: the restart path
//! hands a descriptor of the same description to the successor (`crate::handover`), which
//! adopts it ([`ServingLock::take`] with the inherited file), so the lock is never free between
//! the two processes, and a successor that fails to start leaves it with its predecessor.
//! The kernel releases it when the last process holding it exits, however it exits.
//!
//! The file is never removed: removing it would let two hosts lock two different files of one
//! name. Only the lock means something; the pid written in the file names the holder in the
//! refusal, nothing else reads it.
//!
//! What does not lock: `game-host check` (it serves nothing and writes no player's data; see
//! `check.rs`), and an in-memory database (`sqlite://:memory:`), which no other process can
//! open.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The SQLite path that names a database in memory rather than a file.
const IN_MEMORY: &str = ":memory:";

/// This process's lock on a SQLite database file. Dropping it (and every copy made by
/// [`ServingLock::try_clone`], and every successor's descriptor) releases the lock.
#[derive(Debug)]
pub struct ServingLock {
    file: File,
    /// `<database>.lock`, the database's path made absolute.
    path: PathBuf,
}

/// How [`ServingLock::take`] came by the lock, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Locked by this process: no host served the file.
    Locked,
    /// The predecessor's lock, handed over by the restart path.
    Inherited,
    /// A lock was handed over, but of another file (the database's path changed in between,
    /// or the lock file was replaced); this process locked the file it serves itself.
    InheritedOtherFile,
}

/// Why this process may not serve the database.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another game-host{holder} serves sqlite://{database} (it holds {lock}): two hosts on one SQLite file lose updates, as each answers from its own memory of the players; stop it, give this host a database of its own (--database-url sqlite://OTHER.db), or run several hosts on PostgreSQL or MariaDB")]
    Held {
        database: String,
        lock: String,
        holder: Holder,
    },
    #[error("cannot lock the database sqlite://{database} with {lock}: {source}")]
    Io {
        database: String,
        lock: String,
        source: io::Error,
    },
    #[error("cannot copy the lock {lock} for a successor: {source}")]
    Copy { lock: String, source: io::Error },
}

/// The pid the holder wrote in the lock file, shown as ` (pid N)`; nothing if it is not known
/// (a holder between locking and writing it).
#[derive(Debug)]
pub struct Holder(Option<u32>);

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

impl ServingLock {
    /// Locks `<database>.lock` without waiting, and writes this process's pid in it; `None`
    /// for an in-memory database. `inherited`, a lock handed over by a predecessor, is adopted
    /// instead if it is this database's lock file (same device and inode); otherwise it is
    /// dropped and the file locked as if none had come.
    pub fn take(
        database: &Path,
        inherited: Option<File>,
    ) -> Result<Option<(ServingLock, Taken)>, LockError> {
        if database.as_os_str() == IN_MEMORY {
            return Ok(None);
        }
        let path = lock_path(database).map_err(|source| io_error(database, database, source))?;
        let error = |source| io_error(database, &path, source);
        let file = open(&path).map_err(error)?;
        let (file, taken) = match inherited {
            Some(inherited) if same_file(&inherited, &file).map_err(error)? => {
                (inherited, Taken::Inherited)
            }
            Some(_) => (file, Taken::InheritedOtherFile),
            None => (file, Taken::Locked),
        };
        // On an inherited description that holds the lock already this succeeds at once; on
        // any other it fails if a host holds the file.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    database: database.display().to_string(),
                    lock: path.display().to_string(),
                    holder: Holder(holder(&file)),
                })
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(error(source)),
        }
        let lock = ServingLock {
            file,
            path: path.clone(),
        };
        lock.claim().map_err(error)?;
        Ok(Some((lock, taken)))
    }

    /// Writes this process's pid in the lock file: at start, and again after a successor
    /// that may have written its own failed to start.
    pub fn claim(&self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file
            .write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
    }

    /// Another descriptor of the same open file description, holding the same lock: the
    /// restart path keeps one to hand to successors.
    pub fn try_clone(&self) -> Result<ServingLock, LockError> {
        let file = self.file.try_clone().map_err(|source| LockError::Copy {
            lock: self.path.display().to_string(),
            source,
        })?;
        Ok(ServingLock {
            file,
            path: self.path.clone(),
        })
    }

    /// A descriptor of the lock for a successor to inherit: of the same open file
    /// description, so it holds the same lock.
    pub fn for_successor(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<database>.lock`, with the database's folder (and the database, if it exists) resolved to
/// their real paths: two hosts that spell the path differently (relative, through a symbolic
/// link) still meet on one lock file. Creates the folder, as the store would.
fn lock_path(database: &Path) -> io::Result<PathBuf> {
    let name = database
        .file_name()
        .ok_or_else(|| io::Error::other("the database path names no file"))?;
    let folder = match database.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(folder)?;
    let real = match database.canonicalize() {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => folder.canonicalize()?.join(name),
        Err(e) => return Err(e),
    };
    let mut lock = real.into_os_string();
    lock.push(".lock");
    Ok(lock.into())
}

/// Opens (creating) the lock file without truncating it: a holder's pid must survive a host
/// that opens it only to be refused. Mode 0600: any process that can open the file could lock
/// it and keep the host from starting, so only the host's user may.
fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn same_file(a: &File, b: &File) -> io::Result<bool> {
    let (a, b) = (a.metadata()?, b.metadata()?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// The pid the holder wrote, if it can be read.
fn holder(file: &File) -> Option<u32> {
    let mut text = String::new();
    let mut reader = file;
    reader.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn io_error(database: &Path, lock: &Path, source: io::Error) -> LockError {
    LockError::Io {
        database: database.display().to_string(),
        lock: lock.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
