//! `game-host new-module NAME PREFIX`: writes a module crate that builds, passes its tests and
//! is served once installed: one command (`PREFIX01`) taking a typed request, a declared
//! refusal, saved data, and unit tests, from the templates in `host/templates/module`.
//!
//! In the host's workspace (the current folder is its root) the crate goes to `plugins/NAME`
//! and joins the workspace's members, so that `make install-module MODULE=NAME` builds, checks
//! and installs it. Anywhere else (`--dir`) it is a crate of its own, which depends on the
//! host's `plugin-api` by path.

use std::fmt;
use std::path::{Path, PathBuf};

const LIB: &str = include_str!("../templates/module/lib.rs.tmpl");
const RULES: &str = include_str!("../templates/module/rules.rs.tmpl");
const TESTS: &str = include_str!("../templates/module/tests.rs.tmpl");
const CARGO_IN_WORKSPACE: &str = include_str!("../templates/module/Cargo.workspace.toml.tmpl");
const CARGO_STANDALONE: &str = include_str!("../templates/module/Cargo.standalone.toml.tmpl");

/// Where the new crate goes.
#[derive(Debug, Clone)]
pub enum Place {
    /// `plugins/NAME` of the workspace whose root is this folder, added to its members.
    Workspace { root: PathBuf },
    /// A crate of its own in `dir`, depending on the `plugin-api` folder `plugin_api`.
    Standalone { dir: PathBuf, plugin_api: PathBuf },
}

/// What was written, and what to do next.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub next_steps: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ScaffoldError {
    BadName(String),
    BadPrefix(String),
    /// The folder exists and is not empty.
    Exists(PathBuf),
    /// The current folder is not the root of the host's workspace.
    NotAWorkspace(PathBuf),
    /// No `plugin-api` folder to depend on.
    NoPluginApi(PathBuf),
    /// A module of the workspace already declares this name or prefix (in its `lib.rs`).
    Taken {
        what: &'static str,
        value: String,
        by: PathBuf,
    },
    Io(String),
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaffoldError::BadName(name) => write!(
                f,
                "`{name}` cannot name a module: use 1 to 32 characters of a-z 0-9 _, starting with a letter"
            ),
            ScaffoldError::BadPrefix(prefix) => write!(
                f,
                "`{prefix}` is not a prefix: use two digits, not used by another module (the demo has 10, 11 and 12)"
            ),
            ScaffoldError::Exists(dir) => write!(
                f,
                "{} exists and is not empty: choose another name or --dir",
                dir.display()
            ),
            ScaffoldError::NotAWorkspace(dir) => write!(
                f,
                "{} is not the root of the host's workspace (no Cargo.toml with [workspace] and plugin-api/): \
                 run this there, or pass --dir to make a crate of its own",
                dir.display()
            ),
            ScaffoldError::NoPluginApi(path) => write!(
                f,
                "no plugin-api crate at {}: pass --plugin-api with the plugin-api folder of the host's source \
                 (plugin-api {})",
                path.display(),
                plugin_api::INTERFACE_VERSION
            ),
            ScaffoldError::Taken { what, value, by } => write!(
                f,
                "{what} `{value}` is taken: {} declares it; the host serves one module per {what}, \
                 so choose another",
                by.display()
            ),
            ScaffoldError::Io(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ScaffoldError {}

/// Writes the module `name` with prefix `prefix` at `place`.
pub fn new_module(name: &str, prefix: &str, place: &Place) -> Result<Created, ScaffoldError> {
    let well_named = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_named {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScaffoldError::BadPrefix(prefix.to_owned()));
    }
    let fill = |template: &str, plugin_api: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{prefix}}", prefix)
            .replace("{{plugin_api}}", plugin_api)
    };
    let (dir, manifest) = match place {
        Place::Workspace { root } => {
            let manifest = root.join("Cargo.toml");
            let is_root = std::fs::read_to_string(&manifest)
                .is_ok_and(|text| text.contains("[workspace]"))
                && root.join("plugin-api").is_dir();
            if !is_root {
                return Err(ScaffoldError::NotAWorkspace(root.clone()));
            }
            (
                root.join("plugins").join(name),
                fill(CARGO_IN_WORKSPACE, ""),
            )
        }
        Place::Standalone { dir, plugin_api } => {
            if !plugin_api.join("Cargo.toml").is_file() {
                return Err(ScaffoldError::NoPluginApi(plugin_api.clone()));
            }
            let plugin_api = plugin_api.canonicalize().map_err(io(plugin_api))?;
            // A TOML string, quoted and escaped (a path may hold `"` or `\`).
            let path = toml_edit::Value::from(plugin_api.display().to_string()).to_string();
            (dir.clone(), fill(CARGO_STANDALONE, path.trim()))
        }
    };
    let empty = std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none());
    if !empty {
        return Err(ScaffoldError::Exists(dir));
    }
    if let Place::Workspace { root } = place {
        for (what, value) in [("name", name), ("prefix", prefix)] {
            if let Some(by) = declared_by(&root.join("plugins"), what, value) {
                let value = value.to_owned();
                return Err(ScaffoldError::Taken { what, value, by });
            }
        }
    }
    let files = [
        ("Cargo.toml", manifest),
        ("src/lib.rs", fill(LIB, "")),
        ("src/rules.rs", fill(RULES, "")),
        ("src/rules/tests.rs", fill(TESTS, "")),
    ];
    std::fs::create_dir_all(dir.join("src/rules")).map_err(io(&dir))?;
    for (file, text) in &files {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let lib = format!("lib{name}.so");
    let next_steps = match place {
        Place::Workspace { root } => {
            add_member(&root.join("Cargo.toml"), &format!("plugins/{name}"))?;
            vec![
                format!("cargo test -p {name}"),
                format!("make install-module MODULE={name}   # with `make run` going"),
            ]
        }
        Place::Standalone { .. } => vec![
            format!("cd {} && cargo test && cargo build", dir.display()),
            format!("game-host check target/debug/{lib}"),
            format!("cp target/debug/{lib} <the host's plugins directory>/"),
        ],
    };
    Ok(Created { dir, next_steps })
}

/// The `lib.rs` of a module under `plugins` whose `export_module!` declares `what: "value"`
/// (as the templates and the demo write it; the host itself refuses a clash at load).
fn declared_by(plugins: &Path, what: &str, value: &str) -> Option<PathBuf> {
    let declaration = format!("{what}: \"{value}\"");
    let mut modules: Vec<PathBuf> = std::fs::read_dir(plugins)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("src/lib.rs"))
        .collect();
    modules.sort();
    modules.into_iter().find(|lib| {
        std::fs::read_to_string(lib).is_ok_and(|text| {
            text.lines()
                .any(|line| line.trim().trim_end_matches(',') == declaration)
        })
    })
}

/// Adds `member` to the `[workspace] members` of `manifest`, keeping the rest as it was.
fn add_member(manifest: &Path, member: &str) -> Result<(), ScaffoldError> {
    let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| ScaffoldError::Io(format!("cannot read {}: {e}", manifest.display())))?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| ScaffoldError::NotAWorkspace(manifest.to_owned()))?;
    if !members.iter().any(|m| m.as_str() == Some(member)) {
        // After the last module of `plugins/`, or last.
        let modules = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.as_str().is_some_and(|m| m.starts_with("plugins/")));
        let at = modules.last().map_or(members.len(), |(last, _)| last + 1);
        members.insert_formatted(at, toml_edit::Value::from(member).decorated("\n    ", ""));
    }
    std::fs::write(manifest, doc.to_string()).map_err(io(manifest))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ScaffoldError + '_ {
    move |e| ScaffoldError::Io(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
