//! The archive of recent module versions: the libraries a rollback can go back to.
//!
//! Each version that served is kept as `<data_dir>/versions/<module>/<sha256>.so`, so that a
//! rollback does not depend on what is in the plugins directory now. The newest
//! `keep + 1` versions per module are kept (the serving one and `keep` before it).

use super::version::ModuleMeta;
use std::collections::HashMap;
use std::path::PathBuf;

/// Versions per module, oldest first; the last one is the newest that served.
pub struct Archive {
    dir: PathBuf,
    keep: usize,
    modules: HashMap<String, Vec<Kept>>,
}

struct Kept {
    version: String,
    sha256: String,
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

    /// Records a version that now serves, with its library's bytes.
    pub fn keep(&mut self, meta: &ModuleMeta, bytes: &[u8]) {
        let path = self.path(&meta.name, &meta.sha256);
        let stored = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| {
                if path.exists() {
                    Ok(())
                } else {
                    std::fs::write(&path, bytes)
                }
            });
        if stored.is_err() {
            return; // A version that cannot be archived is simply not offered for rollback.
        }
        let kept = self.modules.entry(meta.name.clone()).or_default();
        kept.retain(|k| k.sha256 != meta.sha256);
        kept.push(Kept {
            version: meta.version.clone(),
            sha256: meta.sha256.clone(),
        });
        let excess = kept.len().saturating_sub(self.keep + 1);
        for old in kept.drain(..excess) {
            let _ =
                std::fs::remove_file(self.dir.join(&meta.name).join(format!("{}.so", old.sha256)));
        }
    }

    /// The versions before the newest, newest first: (version, sha256).
    pub fn previous(&self, module: &str) -> Vec<(String, String)> {
        let kept = self
            .modules
            .get(module)
            .map(Vec::as_slice)
            .unwrap_or_default();
        kept.iter()
            .rev()
            .skip(1)
            .map(|k| (k.version.clone(), k.sha256.clone()))
            .collect()
    }

    /// The library of the version before `serving_sha256`, and its sha256: what a rollback
    /// would load. Changes nothing.
    pub fn previous_of(&self, module: &str, serving_sha256: &str) -> Option<(PathBuf, String)> {
        let kept = self.modules.get(module)?;
        let serving = kept.iter().rposition(|k| k.sha256 == serving_sha256)?;
        let previous = kept.get(serving.checked_sub(1)?)?.sha256.clone();
        Some((self.path(module, &previous), previous))
    }

    /// For a rollback from `serving_sha256`: forgets that version and returns the library of
    /// the one before it (which becomes the newest) and its sha256.
    pub fn take_previous(
        &mut self,
        module: &str,
        serving_sha256: &str,
    ) -> Option<(PathBuf, String)> {
        let kept = self.modules.get_mut(module)?;
        let serving = kept.iter().rposition(|k| k.sha256 == serving_sha256)?;
        let previous = kept.get(serving.checked_sub(1)?)?.sha256.clone();
        let forgotten = kept.remove(serving);
        let _ = std::fs::remove_file(self.path(module, &forgotten.sha256));
        Some((self.path(module, &previous), previous))
    }

    fn path(&self, module: &str, sha256: &str) -> PathBuf {
        self.dir.join(module).join(format!("{sha256}.so"))
    }
}

#[cfg(test)]
mod tests;
