//! The watcher: reports changes in the plugins directory to the registry. It decides nothing
//! itself; loading, checking and swapping are the registry's.
//!
//! `notify`'s debouncer waits until a file has been quiet for `plugins.debounce_ms`, so a
//! `cp` still writing, an editor's or `rsync`'s temp-then-rename, or `cargo build` output
//! copied in arrive as one settled change. Temporary names are not libraries and are
//! ignored; the rename onto `lib<name>.so` is what counts. A library that is still refused
//! (half-written despite the quiet period) is tried once more after a short backoff, and
//! again whenever the file changes. A library's signature `<lib>.so.sig` settling counts as a
//! change of `<lib>.so` (a library refused as unsigned is tried again when its `.sig` lands).
//! A file settling in a module's tables folder (`<module>.tables/`) counts as a change of that
//! module's tables: the registry loads its library again with them.

use super::registry::{is_library, Change, Registry};
use super::tables;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// How long after a refusal the same file is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the registry's plugins directory and applies each settled change.
pub fn start(
    registry: Arc<Registry>,
    debounce: Duration,
    log: slog::Logger,
) -> notify::Result<Watcher> {
    let dir = registry.plugins_dir().to_owned();
    let (changed, mut changes) = unbounded_channel::<Settled>();
    let report = changed.clone();
    let watch_log = log.clone();
    // Events name paths under the absolute folder watched (below).
    let watched = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let top = watched.clone();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|e| changes_content(&e.event.kind))
                    .flat_map(|e| e.event.paths)
                    .collect();
                // Libraries directly in the folder; tables in its `<module>.tables/` folders.
                let libraries: BTreeSet<PathBuf> = paths
                    .iter()
                    .filter(|p| p.parent() == Some(top.as_path()))
                    .cloned()
                    .filter_map(library_of)
                    .collect();
                let tables: BTreeSet<String> =
                    paths.iter().filter_map(|p| tables::module_of(p)).collect();
                for path in libraries {
                    let _ = report.send(Settled::Library { path, retry: false });
                }
                for module in tables {
                    let _ = report.send(Settled::Tables { module });
                }
            }
            Err(errors) => {
                slog::warn!(watch_log, "watching the plugins directory failed"; "errors" => ?errors)
            }
        }
    })?;
    // Recursive: the tables folders are in it (a new one is watched as it appears). The
    // watch is on the folder's absolute path: on a relative one (`var/plugins`, as `make run`
    // gives it), files new to the folder went unreported. Events are named back into `dir`
    // by file name, as the registry names files.
    debouncer.watch(&watched, RecursiveMode::Recursive)?;
    slog::info!(log, "watching for module changes"; "dir" => %dir.display(), "debounce_ms" => debounce.as_millis() as u64);
    let task = tokio::spawn(async move {
        while let Some(settled) = changes.recv().await {
            apply(&registry, &dir, settled, &changed).await;
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
        task,
    })
}

/// A change that has been quiet for the debounce period.
enum Settled {
    Library {
        path: PathBuf,
        /// This is the one retry after a refusal; it is not retried again.
        retry: bool,
    },
    /// A file in this module's tables folder.
    Tables { module: String },
}

/// Hands one settled path to the registry; schedules one retry after a refusal.
async fn apply(
    registry: &Registry,
    dir: &Path,
    settled: Settled,
    retry: &UnboundedSender<Settled>,
) {
    let (path, was_retry) = match settled {
        Settled::Library { path, retry } => (path, retry),
        Settled::Tables { module } => return registry.tables_changed(&module).await,
    };
    // Name the file as the registry does (events may carry another spelling of the folder).
    let Some(name) = path.file_name() else {
        return;
    };
    let file = dir.join(name);
    if !file.is_file() {
        registry.remove_file(&file).await;
        return;
    }
    let refused = matches!(registry.load_file(&file).await, Change::Refused(_));
    if refused && !was_retry {
        let retry = retry.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_AFTER).await;
            let _ = retry.send(Settled::Library {
                path: file,
                retry: true,
            });
        });
    }
}

/// Whether an event may mean new content: not a file being opened or read (the host reads
/// libraries and tables itself, and those reads must not count as changes, or each would
/// start another).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The library a changed path is about: itself, or the library a `.sig` signs.
fn library_of(path: PathBuf) -> Option<PathBuf> {
    if is_library(&path) {
        return Some(path);
    }
    let name = path.file_name()?.to_str()?;
    let library = path.with_file_name(name.strip_suffix(".sig")?);
    is_library(&library).then_some(library)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn reads_of_a_file_are_not_changes_and_writes_creates_renames_removals_are() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Any),
        ] {
            assert!(!changes_content(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Content)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changes_content(&kind), "{kind:?}");
        }
    }
}
