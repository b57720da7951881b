//! A module's data tables as the host reads them: the `*.csv` and `*.json` files of its
//! tables folder, `<module>.tables/` beside its library (docs/modules.md, "Data tables").
//!
//! A version is a library *and* the tables it read: a change of either is a new version,
//! loaded beside the serving one through the one load pipeline and swapped in the same way
//! ([`super::registry`]). The folder is read once per load, into memory, and hashed; the
//! module's reader then runs over those bytes (`ModuleVersion::load_tables`), so a file
//! changing meanwhile cannot give a version tables other than the ones it is known by.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The largest tables folder read, all files together: bigger ones are refused (the module
/// keeps what it read in memory for as long as the version serves).
pub const MAX_BYTES: u64 = 16 << 20;

/// The tables folder of module `name` beside the libraries of `plugins_dir`.
pub fn folder(plugins_dir: &Path, name: &str) -> PathBuf {
    plugins_dir.join(format!("{name}.tables"))
}

/// The module whose tables folder `path` is, or whose table file it is
/// (`…/mall.tables/goods.csv` → `mall`); not a hidden or other file in the folder (an editor's
/// swap file, an install's `.goods.csv.tmp`).
pub fn module_of(path: &Path) -> Option<String> {
    let named = |path: &Path| {
        let name = path.file_name()?.to_str()?;
        let module = name.strip_suffix(".tables")?;
        (!module.is_empty() && !module.starts_with('.')).then(|| module.to_owned())
    };
    named(path).or_else(|| {
        let name = path.file_name()?.to_str()?;
        let table = !name.starts_with('.') && (name.ends_with(".csv") || name.ends_with(".json"));
        table.then(|| named(path.parent()?)).flatten()
    })
}

/// The table files read from a folder, sorted by name, and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSet {
    /// (name, text) of each `*.csv` and `*.json` file.
    pub files: Vec<(String, String)>,
    /// SHA-256 over every file's name and bytes.
    pub sha256: String,
}

/// Why a tables folder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not UTF-8 text: save it as UTF-8", path.display())]
    NotText { path: PathBuf },
    #[error("{} holds more than {} MiB of tables: tables are kept in memory; split the data or move it to the database", folder.display(), MAX_BYTES >> 20)]
    TooBig { folder: PathBuf },
}

impl TableSet {
    /// Reads `folder`: its `*.csv` and `*.json` regular files (not hidden ones, not links),
    /// sorted. A folder that does not exist is an empty set: the module's reader says what it
    /// misses.
    pub fn read(folder: &Path) -> Result<TableSet, ReadError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ReadError::Io { path, source }
        };
        let mut names = Vec::new();
        match std::fs::read_dir(folder) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io(folder))?;
                    let path = entry.path();
                    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    let table = !name.starts_with('.')
                        && (name.ends_with(".csv") || name.ends_with(".json"));
                    // Not followed through a link: a table is a file of this folder.
                    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
                    if table && regular {
                        names.push(name.to_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(folder)(e)),
        }
        names.sort();
        let (mut files, mut total, mut hash) = (Vec::new(), 0u64, Sha256::new());
        for name in names {
            let path = folder.join(&name);
            // The size first: a huge file is refused before it is read.
            let size = std::fs::symlink_metadata(&path).map_err(io(&path))?.len();
            if total + size > MAX_BYTES {
                return Err(ReadError::TooBig {
                    folder: folder.to_owned(),
                });
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            total += bytes.len() as u64;
            if total > MAX_BYTES {
                return Err(ReadError::TooBig {
                    folder: folder.to_owned(),
                });
            }
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
            let text = String::from_utf8(bytes).map_err(|_| ReadError::NotText { path })?;
            files.push((name, text));
        }
        Ok(TableSet {
            files,
            sha256: hex::encode(hash.finalize()),
        })
    }

    /// Writes the files into `folder` (made if needed): how the archive keeps them.
    pub fn write(&self, folder: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(folder)?;
        for (name, text) in &self.files {
            std::fs::write(folder.join(name), text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_reads_as_its_sorted_table_files_and_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("shop.tables");
        assert_eq!(TableSet::read(&folder).unwrap().files, []);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("b.json"), "{}").unwrap();
        std::fs::write(folder.join("a.csv"), "id\n1\n").unwrap();
        std::fs::write(folder.join(".a.csv.swp"), "x").unwrap();
        std::fs::write(folder.join("notes.txt"), "x").unwrap();
        let set = TableSet::read(&folder).unwrap();
        let names: Vec<&str> = set.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.json"]);
        let again = TableSet::read(&folder).unwrap();
        assert_eq!(again.sha256, set.sha256);
        std::fs::write(folder.join("a.csv"), "id\n2\n").unwrap();
        assert_ne!(TableSet::read(&folder).unwrap().sha256, set.sha256);
        std::fs::write(folder.join("a.csv"), [0xff, 0xfe]).unwrap();
        let refused = TableSet::read(&folder).unwrap_err().to_string();
        assert!(refused.contains("not UTF-8"), "{refused}");
    }

    #[test]
    fn a_path_under_a_tables_folder_names_its_module() {
        for (path, module) in [
            ("/srv/plugins/mall.tables/goods.csv", Some("mall")),
            ("/srv/plugins/mall.tables", Some("mall")),
            ("/srv/plugins/libmall.so", None),
            ("/srv/plugins/.tables/x.csv", None),
            ("/srv/plugins/mall.tables/.goods.csv.tmp", None),
            ("/srv/plugins/mall.tables/goods.csv~", None),
        ] {
            assert_eq!(module_of(Path::new(path)).as_deref(), module, "{path}");
        }
    }
}
