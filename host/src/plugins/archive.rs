//! The archive of recent module versions: the libraries, and the data tables they read, that a
//! rollback can go back to.
//!
//! Each version that served is kept as `<data_dir>/versions/<module>/<sha256>.so`, with its
//! tables (if its module has any) as `<data_dir>/versions/<module>/<sha256>.tables/`, so that a
//! rollback does not depend on what is in the plugins directory now. A version is a library
//! and its tables: two versions may share a library (a tables change) or tables. The newest
//! `keep + 1` versions per module are kept (the serving one and `keep` before it); a file goes
//! when no kept version uses it.

use super::tables::TableSet;
use super::version::{identity, ModuleMeta};
use std::collections::HashMap;
use std::path::PathBuf;

/// Versions per module, oldest first; the last one is the newest that served.
pub struct Archive {
    dir: PathBuf,
    keep: usize,
    modules: HashMap<String, Vec<Kept>>,
}

/// A version kept for rollback, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub version: String,
    /// The library's sha256.
    pub sha256: String,
    /// The sha256 of the tables it read, if its module has any.
    pub tables_sha256: Option<String>,
}

impl Kept {
    fn identity(&self) -> String {
        identity(&self.sha256, self.tables_sha256.as_deref())
    }
}

/// What a rollback loads: a kept library and the folder of its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub library: PathBuf,
    pub sha256: String,
    pub tables: Option<PathBuf>,
    /// The sha256 of those tables, which the version must read again.
    pub tables_sha256: Option<String>,
    /// The version's identity ([`super::version::ModuleVersion::identity`]).
    pub identity: String,
}

impl Archive {
    pub fn open(dir: PathBuf, keep: usize) -> std::io::Result<Archive> {
        std::fs::create_dir_all(&dir)?;
        Ok(Archive {
            dir,
            keep,
            modules: HashMap::new(),
        })
    }

    /// Records a version that now serves, with its library's bytes and the tables it read.
    pub fn keep(&mut self, meta: &ModuleMeta, bytes: &[u8], tables: Option<&TableSet>) {
        let library = self.library(&meta.name, &meta.sha256);
        let stored = library
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| match library.exists() {
                true => Ok(()),
                false => std::fs::write(&library, bytes),
            })
            .and_then(|()| match tables {
                Some(set) => {
                    let folder = self.tables(&meta.name, &set.sha256);
                    match folder.exists() {
                        true => Ok(()),
                        // Written whole under another name, then renamed: a folder cut off
                        // midway is never taken for the tables it is named after.
                        false => {
                            let partial = folder.with_extension("tables.partial");
                            let _ = std::fs::remove_dir_all(&partial);
                            set.write(&partial)
                                .and_then(|()| std::fs::rename(&partial, &folder))
                        }
                    }
                }
                None => Ok(()),
            });
        if stored.is_err() {
            return; // A version that cannot be archived is simply not offered for rollback.
        }
        let new = Kept {
            version: meta.version.clone(),
            sha256: meta.sha256.clone(),
            tables_sha256: tables.map(|set| set.sha256.clone()),
        };
        let kept = self.modules.entry(meta.name.clone()).or_default();
        kept.retain(|k| k.identity() != new.identity());
        kept.push(new);
        let excess = kept.len().saturating_sub(self.keep + 1);
        let gone: Vec<Kept> = kept.drain(..excess).collect();
        self.forget_files(&meta.name, gone);
    }

    /// The versions before the newest, newest first.
    pub fn previous(&self, module: &str) -> Vec<Kept> {
        let kept = self
            .modules
            .get(module)
            .map(Vec::as_slice)
            .unwrap_or_default();
        kept.iter().rev().skip(1).cloned().collect()
    }

    /// The version before the one known as `serving_identity`: what a rollback would load.
    /// Changes nothing.
    pub fn previous_of(&self, module: &str, serving_identity: &str) -> Option<Previous> {
        let kept = self.modules.get(module)?;
        let serving = kept
            .iter()
            .rposition(|k| k.identity() == serving_identity)?;
        let previous = kept.get(serving.checked_sub(1)?)?;
        Some(Previous {
            library: self.library(module, &previous.sha256),
            sha256: previous.sha256.clone(),
            tables: previous
                .tables_sha256
                .as_ref()
                .map(|sha| self.tables(module, sha)),
            tables_sha256: previous.tables_sha256.clone(),
            identity: previous.identity(),
        })
    }

    /// The kept library of `module` with `sha256`, if the archive holds it.
    pub fn kept_library(&self, module: &str, sha256: &str) -> Option<PathBuf> {
        let library = self.library(module, sha256);
        library.is_file().then_some(library)
    }

    /// For a rollback from `serving_identity`, done: forgets that version (the one before it
    /// becomes the newest), and its files unless another kept version uses them.
    pub fn forget(&mut self, module: &str, serving_identity: &str) {
        let Some(kept) = self.modules.get_mut(module) else {
            return;
        };
        let Some(serving) = kept.iter().rposition(|k| k.identity() == serving_identity) else {
            return;
        };
        let gone = kept.remove(serving);
        self.forget_files(module, vec![gone]);
    }

    /// Deletes the files of `gone` that no kept version of `module` uses.
    fn forget_files(&self, module: &str, gone: Vec<Kept>) {
        let kept = self
            .modules
            .get(module)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for old in gone {
            if !kept.iter().any(|k| k.sha256 == old.sha256) {
                let _ = std::fs::remove_file(self.library(module, &old.sha256));
            }
            if let Some(tables) = &old.tables_sha256 {
                if !kept
                    .iter()
                    .any(|k| k.tables_sha256.as_ref() == Some(tables))
                {
                    let _ = std::fs::remove_dir_all(self.tables(module, tables));
                }
            }
        }
    }

    fn library(&self, module: &str, sha256: &str) -> PathBuf {
        self.dir.join(module).join(format!("{sha256}.so"))
    }

    fn tables(&self, module: &str, sha256: &str) -> PathBuf {
        self.dir.join(module).join(format!("{sha256}.tables"))
    }
}

#[cfg(test)]
mod tests;
