//! A host following the fleet (`plugins.source = "database"`): it brings what it serves to
//! what is desired in the database, and reports what it serves.
//!
//! Every `fleet.poll_ms` it reads the change counter (one integer). When it moved, or at start,
//! it reads every module's desired release, and for each one it does not serve (and has not
//! already refused) it writes the release into the plugins directory, which in this mode is
//! only a cache, and loads that file through [`Registry::reload_file`]: the one load path, so
//! a release is trusted, checked, loaded beside, swapped and drained exactly as a file that
//! landed in the directory. A refusal keeps what serves and is remembered by release, so the
//! same release is not tried again until a new one is published (or the host restarts).
//!
//! It writes this host's [`HostReport`] after every change and every `fleet.heartbeat_secs`.
//! A database that does not answer is logged once per outage; the host keeps serving what it
//! has and catches up when the database is back. Cancel safety: the task is aborted only at
//! shutdown; each of its statements is a single autocommit statement (nothing is left open),
//! and a library is written to a temporary name and renamed, so the cache never holds a
//! half-written file.

use super::{ModuleReport, Refusal};
use crate::clock::Clock;
use crate::plugins::registry::Registry;
use crate::plugins::trust::signature::signature_path;
use crate::plugins::{tables, Change};
use crate::store::fleet::{unpack, HostReport, Release};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One host's follower of the fleet's desired releases.
pub struct Follower {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    log: slog::Logger,
    /// What this host reports of itself besides its modules.
    host_id: String,
    address: String,
    started_at_ms: i64,
    /// The last release refused per module. A std `Mutex`: never held across `.await`.
    refused: Mutex<HashMap<String, Refusal>>,
    /// Serializes [`Follower::catch_up`]: the start-up call and the polling task.
    catching_up: tokio::sync::Mutex<()>,
}

impl Follower {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        log: slog::Logger,
        host_id: String,
        address: String,
    ) -> Follower {
        let started_at_ms = clock.now_millis();
        Follower {
            store,
            registry,
            clock,
            log,
            host_id,
            address,
            started_at_ms,
            refused: Mutex::new(HashMap::new()),
            catching_up: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads every desired release this host does not serve yet (and has not refused), then
    /// reports. Returns the changes it made.
    pub async fn catch_up(&self) -> Result<Vec<Change>, StoreError> {
        let _one_at_a_time = self.catching_up.lock().await;
        let fleet = self.store.fleet();
        let mut changes = Vec::new();
        for desired in fleet.desired().await? {
            if self.serving(&desired.module).as_deref() == Some(desired.release_id.as_str()) {
                self.refused_lock().remove(&desired.module);
                continue;
            }
            let already_refused = self
                .refused_lock()
                .get(&desired.module)
                .is_some_and(|r| r.release == desired.release_id);
            if already_refused {
                continue;
            }
            let change = match fleet.release(&desired.release_id).await? {
                Some(release) => self.load(&release).await,
                None => Change::Refused(format!(
                    "release {} of `{}` is not in the database any more: publish it again",
                    desired.release_id, desired.module
                )),
            };
            match &change {
                Change::Refused(reason) => {
                    slog::warn!(self.log, "refused a published release; what serves stays";
                        "module" => &desired.module, "release" => &desired.release_id,
                        "reason" => reason);
                    self.refused_lock().insert(
                        desired.module.clone(),
                        Refusal {
                            release: desired.release_id.clone(),
                            reason: reason.clone(),
                        },
                    );
                }
                _ => {
                    slog::info!(self.log, "now serving the published release";
                        "module" => &desired.module, "release" => &desired.release_id);
                    self.refused_lock().remove(&desired.module);
                }
            }
            changes.push(change);
        }
        self.report().await?;
        Ok(changes)
    }

    /// Polls the change counter every `poll` and catches up when it moved; reports every
    /// `heartbeat`. Runs until aborted (at shutdown).
    pub async fn run(self: Arc<Self>, poll: Duration, heartbeat: Duration) {
        let mut seen: Option<i64> = None;
        let mut reported = Instant::now();
        let mut failing = false;
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let step = async {
                let changes = self.store.fleet().fleet_changes().await?;
                if seen != Some(changes) {
                    self.catch_up().await?;
                    seen = Some(changes);
                    reported = Instant::now();
                } else if reported.elapsed() >= heartbeat {
                    self.report().await?;
                    reported = Instant::now();
                }
                Ok::<(), StoreError>(())
            };
            match step.await {
                Ok(()) if failing => {
                    failing = false;
                    slog::info!(self.log, "the fleet's database answers again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    slog::warn!(self.log, "cannot follow the fleet's releases; serving what is loaded until the database answers"; "error" => %e);
                }
                Err(_) => {}
            }
        }
    }

    /// Writes this host's report: what it serves and refused, now.
    pub async fn report(&self) -> Result<(), StoreError> {
        let modules = self.modules();
        let report = HostReport {
            host_id: self.host_id.clone(),
            address: self.address.clone(),
            binary_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: self.started_at_ms,
            last_seen_ms: self.clock.now_millis(),
            modules: serde_json::to_string(&modules).expect("reports serialize"),
        };
        self.store.fleet().report_host(&report).await
    }

    /// Every module this host serves or refused, by name.
    pub fn modules(&self) -> Vec<ModuleReport> {
        let mut modules: BTreeMap<String, ModuleReport> = BTreeMap::new();
        for version in self.registry.routes().versions() {
            let name = version.meta.name.clone();
            modules.insert(
                name.clone(),
                ModuleReport {
                    module: name,
                    serving: Some(version.identity()),
                    version: Some(version.meta.version.clone()),
                    refused: None,
                },
            );
        }
        for (module, refusal) in self.refused_lock().iter() {
            modules
                .entry(module.clone())
                .or_insert_with(|| ModuleReport {
                    module: module.clone(),
                    ..ModuleReport::default()
                })
                .refused = Some(refusal.clone());
        }
        modules.into_values().collect()
    }

    /// The identity of the version of `module` serving here, if one is.
    fn serving(&self, module: &str) -> Option<String> {
        self.registry
            .routes()
            .versions()
            .into_iter()
            .find(|v| v.meta.name == module)
            .map(|v| v.identity())
    }

    /// Writes `release` into the plugins directory and loads it through the registry.
    async fn load(&self, release: &Release) -> Change {
        // Over the file the module serves from, if it serves; else `lib<module>.so`.
        let serving_file = self
            .registry
            .routes()
            .versions()
            .into_iter()
            .find(|v| v.meta.name == release.module)
            .map(|v| v.meta.file.clone());
        let dir = self.registry.plugins_dir().to_owned();
        let file = serving_file.unwrap_or_else(|| dir.join(format!("lib{}.so", release.module)));
        let installed = {
            let (release, file, dir) = (release.clone(), file.clone(), dir.clone());
            tokio::task::spawn_blocking(move || Installed::write(&release, &file, &dir)).await
        };
        let installed = match installed {
            Ok(Ok(installed)) => installed,
            Ok(Err(e)) => {
                return Change::Refused(format!(
                    "cannot write the release into {}: {e}",
                    dir.display()
                ))
            }
            Err(e) => return Change::Refused(format!("writing the release failed: {e}")),
        };
        let change = self.registry.reload_file(&file).await;
        // A refused release leaves the cache as it was, so a restart serves what serves now.
        let refused = matches!(change, Change::Refused(_));
        let settled = tokio::task::spawn_blocking(move || installed.settle(refused)).await;
        if let Ok(Err(e)) | Err(e) = settled.map_err(std::io::Error::other) {
            slog::warn!(self.log, "cannot tidy the plugins directory after a release"; "error" => %e);
        }
        change
    }

    fn refused_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Refusal>> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A release's files written into the plugins directory over the ones there, which are kept
/// aside until the load's verdict: taken back if the release is refused.
struct Installed {
    /// (where a file or folder is, where its previous content was put aside).
    aside: Vec<(PathBuf, PathBuf)>,
}

impl Installed {
    /// Writes the release: its tables folder and its signature first, then the library, each
    /// under a temporary name and renamed, so a reader never sees a half-written file and the
    /// library lands last, with what it is checked against beside it.
    fn write(release: &Release, file: &Path, dir: &Path) -> std::io::Result<Installed> {
        let library = unpack(release).ok_or_else(|| {
            std::io::Error::other(format!(
                "the stored library of release {} is damaged (it is not the library published): publish it again",
                release.id
            ))
        })?;
        let mut installed = Installed { aside: Vec::new() };
        let folder = tables::folder(dir, &release.module);
        if let Some(files) = &release.tables {
            let staging = dir.join(format!(".{}.tables.tmp", release.module));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging)?;
            for (name, text) in files {
                std::fs::write(staging.join(name), text)?;
            }
            installed.put_aside(&folder)?;
            std::fs::rename(&staging, &folder)?;
        }
        let signature = signature_path(file);
        installed.put_aside(&signature)?;
        if let Some(bytes) = &release.signature {
            write_then_rename(&signature, bytes)?;
        }
        installed.put_aside(file)?;
        write_then_rename(file, &library)?;
        Ok(installed)
    }

    /// Moves what is at `path` (if anything) aside, to `.NAME.previous`.
    fn put_aside(&mut self, path: &Path) -> std::io::Result<()> {
        let aside = hidden(path, "previous");
        remove(&aside)?;
        match std::fs::rename(path, &aside) {
            Ok(()) => {
                self.aside.push((path.to_owned(), aside));
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// After the verdict: a refused release's files are replaced by what was there before; an
    /// accepted one's stay, and what was put aside goes.
    fn settle(self, refused: bool) -> std::io::Result<()> {
        for (path, aside) in self.aside {
            if refused {
                remove(&path)?;
                std::fs::rename(&aside, &path)?;
            } else {
                remove(&aside)?;
            }
        }
        Ok(())
    }
}

/// Puts back what an install that never settled (the host stopped or crashed while it
/// loaded a release) had put aside in `dir`: the cache is then what served before it, and the
/// start-up catch-up tries the release again. Called at start, before the directory is read.
pub fn recover_cache(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let aside = entry?.path();
        let name = aside
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let original = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".previous"));
        if let Some(original) = original.filter(|n| !n.is_empty()) {
            let path = dir.join(original);
            remove(&path)?;
            std::fs::rename(&aside, &path)?;
        }
    }
    Ok(())
}

/// `.NAME.SUFFIX` beside `path`.
fn hidden(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Removes a file or a folder, if there is one.
fn remove(path: &Path) -> std::io::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `.NAME.tmp` beside `path`, then renames it onto `path`.
fn write_then_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = hidden(path, "tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fleet::pack;

    fn release(library: &[u8], signature: Option<&[u8]>) -> Release {
        let id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(library));
        Release {
            id,
            module: "m".into(),
            version: "1".into(),
            library_zlib: pack(library),
            signature: signature.map(<[u8]>::to_vec),
            tables: Some(vec![("t.csv".into(), "id\n2\n".into())]),
        }
    }

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// A plugins folder with an old library, its signature and its tables.
    fn old_cache() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libm.so");
        std::fs::write(&file, "old").unwrap();
        std::fs::write(signature_path(&file), "old sig").unwrap();
        std::fs::create_dir(dir.path().join("m.tables")).unwrap();
        std::fs::write(dir.path().join("m.tables/t.csv"), "id\n1\n").unwrap();
        (dir, file)
    }

    #[test]
    fn a_refused_release_leaves_the_cache_as_it_was_and_an_accepted_one_stays() {
        let (dir, file) = old_cache();
        let tables = dir.path().join("m.tables/t.csv");
        let installed = Installed::write(&release(b"new", None), &file, dir.path()).unwrap();
        assert_eq!(read(&file).as_deref(), Some("new"));
        assert_eq!(
            read(&signature_path(&file)),
            None,
            "no stale signature beside it"
        );
        assert_eq!(read(&tables).as_deref(), Some("id\n2\n"));
        installed.settle(true).unwrap();
        assert_eq!(read(&file).as_deref(), Some("old"));
        assert_eq!(read(&signature_path(&file)).as_deref(), Some("old sig"));
        assert_eq!(read(&tables).as_deref(), Some("id\n1\n"));

        let installed =
            Installed::write(&release(b"new", Some(b"sig")), &file, dir.path()).unwrap();
        installed.settle(false).unwrap();
        assert_eq!(read(&file).as_deref(), Some("new"));
        assert_eq!(read(&signature_path(&file)).as_deref(), Some("sig"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(names, Vec::<String>::new(), "nothing left aside");
    }

    #[test]
    fn an_install_that_never_settled_is_put_back_at_start() {
        let (dir, file) = old_cache();
        let installed = Installed::write(&release(b"new", None), &file, dir.path()).unwrap();
        drop(installed); // the host stopped before the verdict
        recover_cache(dir.path()).unwrap();
        assert_eq!(read(&file).as_deref(), Some("old"));
        assert_eq!(read(&signature_path(&file)).as_deref(), Some("old sig"));
        assert_eq!(
            read(&dir.path().join("m.tables/t.csv")).as_deref(),
            Some("id\n1\n")
        );
    }

    #[test]
    fn a_damaged_release_writes_nothing() {
        let (dir, file) = old_cache();
        let mut damaged = release(b"new", None);
        damaged.id = "0".repeat(64);
        let refused = Installed::write(&damaged, &file, dir.path()).err().unwrap();
        assert!(refused.to_string().contains("damaged"), "{refused}");
        assert_eq!(read(&file).as_deref(), Some("old"));
        assert_eq!(read(&signature_path(&file)).as_deref(), Some("old sig"));
    }
}
