//! [`Folders`]: the temporary plugins, data and log folders one host runs in, and a config that
//! points at them. Everything is removed when the value is dropped.

use host::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A host's folders below one temporary root: `plugins/` (created), `data/` and `log/` (the
/// host creates them).
pub struct Folders {
    pub root: TempDir,
}

impl Folders {
    /// Folders in a new temporary root.
    pub fn new() -> std::io::Result<Folders> {
        Folders::in_root(tempfile::tempdir()?)
    }

    /// Folders below `root` (a temporary folder the caller named).
    pub fn in_root(root: TempDir) -> std::io::Result<Folders> {
        let folders = Folders { root };
        std::fs::create_dir_all(folders.plugins())?;
        Ok(folders)
    }

    pub fn plugins(&self) -> PathBuf {
        self.root.path().join("plugins")
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// Copies the module library at `library` into the plugins folder, under its own name,
    /// with the data tables of its crate if it has any (a demo module's
    /// `plugins/<name>/tables/`, as `<name>.tables/`: [`install_tables`]); the copy's path.
    pub fn install(&self, library: &Path) -> std::io::Result<PathBuf> {
        let name = library
            .file_name()
            .ok_or_else(|| std::io::Error::other(format!("{} names no file", library.display())))?;
        let module = name
            .to_str()
            .and_then(|n| n.strip_prefix("lib"))
            .and_then(|n| n.strip_suffix(".so"));
        if let Some(module) = module {
            install_tables(module, &self.plugins())?;
        }
        let to = self.plugins().join(name);
        std::fs::copy(library, &to)?;
        Ok(to)
    }

    /// The default config on these folders, with both listeners on ports the system picks
    /// (`127.0.0.1:0`).
    pub fn config(&self) -> Config {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config::default();
        config.server.listen = any_port;
        config.admin.listen = Some(any_port);
        config.paths.plugins_dir = self.plugins();
        config.paths.data_dir = self.data();
        config.paths.log_dir = self.log();
        config
    }
}

/// Copies the data tables of workspace module crate `module` (`plugins/<module>/tables/`), if
/// it has any, into `plugins_dir` as `<module>.tables/`, as `make plugins` installs them.
pub fn install_tables(module: &str, plugins_dir: &Path) -> std::io::Result<()> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(module)
        .join("tables");
    if !source.is_dir() {
        return Ok(());
    }
    let folder = plugins_dir.join(format!("{module}.tables"));
    std::fs::create_dir_all(&folder)?;
    for entry in std::fs::read_dir(&source)? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, folder.join(name))?;
        }
    }
    Ok(())
}
