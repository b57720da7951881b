//! The follower's cache: the plugins directory, where a host following the fleet writes the
//! releases it loads (a canary's under `canary/`), so that a restart serves what served.
//!
//! A release is written file by file under temporary names renamed into place, the library
//! last; what it replaces is kept aside (`.NAME.previous`) until the load's verdict, and put
//! back if the release is refused. An install whose verdict never came (the host stopped or
//! crashed) is put back at the next start, before the directory is read ([`recover_cache`]).

use crate::plugins::tables;
use crate::plugins::trust::signature::signature_path;
use crate::store::fleet::{unpack, Release};
use std::path::{Path, PathBuf};

/// Where a module's canary release is cached: a folder of the plugins directory, which the
/// start-up scan (libraries directly in the directory) does not load.
pub fn canary_dir(plugins_dir: &Path) -> PathBuf {
    plugins_dir.join("canary")
}

/// A release's files written into the plugins directory over the ones there, which are kept
/// aside until the load's verdict: taken back if the release is refused. A file or folder
/// that had nothing before it is marked (`.NAME.new`), so that a refusal, or a start after a
/// crash, removes it rather than leave a refused library for the next start to load.
pub struct Installed {
    /// Each path written, and where what was there before was put aside (`None`: nothing
    /// was; its `.NAME.new` marker says so on disk).
    written: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Installed {
    /// Writes the release: its tables folder and its signature first, then the library, each
    /// under a temporary name and renamed, so a reader never sees a half-written file and the
    /// library lands last, with what it is checked against beside it. A write that fails
    /// (a full disk) puts back what it had put aside before it returns the error.
    pub fn write(release: &Release, file: &Path, dir: &Path) -> std::io::Result<Installed> {
        let library = unpack(release).ok_or_else(|| {
            std::io::Error::other(format!(
                "the stored library of release {} is damaged (it is not the library published): publish it again",
                release.id
            ))
        })?;
        let mut installed = Installed {
            written: Vec::new(),
        };
        match installed.write_files(release, &library, file, dir) {
            Ok(()) => Ok(installed),
            Err(e) => {
                let _ = installed.settle(true);
                Err(e)
            }
        }
    }

    fn write_files(
        &mut self,
        release: &Release,
        library: &[u8],
        file: &Path,
        dir: &Path,
    ) -> std::io::Result<()> {
        let folder = tables::folder(dir, &release.module);
        if let Some(files) = &release.tables {
            let staging = dir.join(format!(".{}.tables.tmp", release.module));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging)?;
            for (name, text) in files {
                std::fs::write(staging.join(name), text)?;
            }
            self.put_aside(&folder)?;
            std::fs::rename(&staging, &folder)?;
        }
        let signature = signature_path(file);
        self.put_aside(&signature)?;
        if let Some(bytes) = &release.signature {
            write_then_rename(&signature, bytes)?;
        }
        self.put_aside(file)?;
        write_then_rename(file, library)
    }

    /// Moves what is at `path` aside, to `.NAME.previous`; or, if nothing is, marks `path` as
    /// new (`.NAME.new`).
    fn put_aside(&mut self, path: &Path) -> std::io::Result<()> {
        let aside = hidden(path, "previous");
        remove(&aside)?;
        match std::fs::rename(path, &aside) {
            Ok(()) => self.written.push((path.to_owned(), Some(aside))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(hidden(path, "new"), b"")?;
                self.written.push((path.to_owned(), None));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// After the verdict: a refused release's files are replaced by what was there before (or
    /// removed, where nothing was); an accepted one's stay, and what was put aside goes.
    pub fn settle(self, refused: bool) -> std::io::Result<()> {
        for (path, aside) in self.written.into_iter().rev() {
            if refused {
                remove(&path)?;
                if let Some(aside) = &aside {
                    std::fs::rename(aside, &path)?;
                }
            } else if let Some(aside) = &aside {
                remove(aside)?;
            }
            if aside.is_none() {
                remove(&hidden(&path, "new"))?;
            }
        }
        Ok(())
    }
}

/// Removes `module`'s canary files from the cache (its library, signature and tables): the
/// canary stopped.
pub fn forget_canary(plugins_dir: &Path, module: &str) -> std::io::Result<()> {
    let dir = canary_dir(plugins_dir);
    let file = dir.join(format!("lib{module}.so"));
    remove(&signature_path(&file))?;
    remove(&tables::folder(&dir, module))?;
    remove(&file)
}

/// Puts back what an install that never settled (the host stopped or crashed while it
/// loaded a release) had put aside in the plugins directory or its canary folder, and removes
/// what it created where nothing was: the cache is then what served before it, and the start-up catch-up tries the release again. Called
/// at start, before the directory is read.
pub fn recover_cache(plugins_dir: &Path) -> std::io::Result<()> {
    recover_dir(plugins_dir)?;
    recover_dir(&canary_dir(plugins_dir))
}

fn recover_dir(dir: &Path) -> std::io::Result<()> {
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
        // A path that had nothing before the install: removed with its marker.
        let created = name.strip_prefix('.').and_then(|n| n.strip_suffix(".new"));
        if let Some(created) = created.filter(|n| !n.is_empty()) {
            remove(&dir.join(created))?;
            remove(&aside)?;
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

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
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
        let hidden: Vec<String> = names(dir.path())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(hidden, Vec::<String>::new(), "nothing left aside");
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
    fn a_refused_or_unsettled_first_release_of_a_module_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libm.so");
        let installed =
            Installed::write(&release(b"new", Some(b"sig")), &file, dir.path()).unwrap();
        installed.settle(true).unwrap();
        assert_eq!(
            names(dir.path()),
            Vec::<String>::new(),
            "a refused first release is gone"
        );

        let installed =
            Installed::write(&release(b"new", Some(b"sig")), &file, dir.path()).unwrap();
        drop(installed); // the host stopped before the verdict
        recover_cache(dir.path()).unwrap();
        assert_eq!(
            names(dir.path()),
            Vec::<String>::new(),
            "and so is an unsettled one, at the next start"
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
