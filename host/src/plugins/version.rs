//! One loaded version of a module: its library, its checked metadata, and calls into it.
//!
//! A `ModuleVersion` lives in an `Arc`. A request pins it (clones the `Arc`) for the whole
//! call, and [`ModuleVersion::call`] copies everything the module returns into host memory
//! before returning, so nothing the host keeps points into the library. When the last `Arc`
//! goes, the library is unloaded.
//!
//! Every method that runs module code must be called on an executor thread
//! ([`super::executor`]), never on the async reactor.

use super::call::CallStats;
use super::executor::ExecutorClosed;
use super::loader::{self, Library, LoadError};
use super::services::ModuleServices;
use super::tables::TableSet;
use crate::clock::Clock;
use crate::protocol::Cmd;
use abi_stable::std_types::{RSlice, RStr, RString};
use plugin_api::abi::{CommandCall, CommandOutcome, ModuleRoot_Ref, TableFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a module says it is, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleMeta {
    pub name: String,
    pub prefix: String,
    pub version: String,
    pub commands: Vec<String>,
    /// The refusals it declares: each positive code and its name.
    pub refusals: Vec<DeclaredRefusal>,
    /// The schema version of the saved data it writes (plugin-api's `saved_schema`).
    pub schema: u32,
    /// The schema each of its migrations starts from, as declared.
    pub migrations: Vec<u32>,
    /// Whether it reads data tables ([`super::tables`]).
    pub tables: bool,
    /// The file it was loaded from (not the shadow copy).
    pub file: PathBuf,
    pub sha256: String,
}

/// A refusal a module declares (`RefusalCode` in plugin-api), copied into host memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeclaredRefusal {
    pub code: i32,
    pub name: String,
}

/// A loaded, checked and initialized module version.
pub struct ModuleVersion {
    pub meta: ModuleMeta,
    /// Counts loads of this module name since the host started: 1, 2, ...
    pub generation: u64,
    pub loaded_at: std::time::SystemTime,
    /// Calls and failures since load, and calls running now.
    pub stats: CallStats,
    /// Where the library was mapped from (unlinked): how `/proc/self/maps` names it.
    pub shadow: PathBuf,
    /// The data tables this version read, if its module has any.
    pub tables: Option<LoadedTables>,
    root: ModuleRoot_Ref,
    services: ModuleServices,
    /// Declared last so that it drops last: unloading happens after everything else is gone.
    _library: Library,
}

/// The data tables a version read: the library keeps the value under `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedTables {
    pub id: u64,
    /// The hash of the files read ([`super::tables::TableSet`]).
    pub sha256: String,
    pub files: Vec<String>,
}

/// How a command ended, in host memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// JSON texts: the reply data, the new state where it changed, and the pushes and group
    /// changes if there are any.
    Done {
        data: String,
        player: Option<String>,
        module_data: Option<String>,
        effects: Option<String>,
    },
    Refused {
        code: i32,
        msg: String,
    },
    UnknownCommand,
    Failed {
        msg: String,
    },
}

/// Copies a module's outcome into host memory, as [`ModuleVersion::call`] does with every
/// outcome. Public so that benchmarks can do the same with an outcome made without a library.
impl From<CommandOutcome> for CallOutcome {
    fn from(outcome: CommandOutcome) -> Self {
        // `into_string` copies a string that a library allocated (it frees through that
        // library's vtable) and keeps the buffer of one allocated in this binary.
        match outcome {
            CommandOutcome::Done {
                data,
                player,
                module_data,
                effects,
            } => CallOutcome::Done {
                data: data.into_string(),
                player: player.into_option().map(RString::into_string),
                module_data: module_data.into_option().map(RString::into_string),
                effects: effects.into_option().map(RString::into_string),
            },
            CommandOutcome::Refused { code, msg } => CallOutcome::Refused {
                code,
                msg: msg.into_string(),
            },
            CommandOutcome::UnknownCommand => CallOutcome::UnknownCommand,
            CommandOutcome::Failed { msg } => CallOutcome::Failed {
                msg: msg.into_string(),
            },
        }
    }
}

/// Why a library was refused. Each message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Untrusted(#[from] super::trust::Untrusted),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{file}: {problem}: fix the module's `export_module!` declaration")]
    InvalidMetadata { file: PathBuf, problem: String },
    #[error("{file}: module `{name}` refused to start: {reason}")]
    InitFailed {
        file: PathBuf,
        name: String,
        reason: String,
    },
    #[error("{file}: module `{name}` wants prefix {prefix}, which module `{owner}` already serves: give one of them another prefix")]
    PrefixTaken {
        file: PathBuf,
        name: String,
        prefix: String,
        owner: String,
    },
    #[error("{file}: a module named `{name}` is already loaded from {other}: module names must be unique")]
    NameTaken {
        file: PathBuf,
        name: String,
        other: PathBuf,
    },
    #[error("{file}: the data tables of module `{name}` are refused, what serves stays: {name}.tables/{table}{}: {reason}: fix the table", line.map_or(String::new(), |line| format!(", line {line}")))]
    Tables {
        file: PathBuf,
        name: String,
        /// The file in the tables folder, if the problem is in one.
        table: String,
        line: Option<u64>,
        reason: String,
    },
    #[error("{file}: module `{name}` not swapped in, what serves stays: {problem}")]
    SavedData {
        file: PathBuf,
        name: String,
        problem: String,
    },
    #[error("{file}: not loaded: {reason}")]
    Budget {
        file: PathBuf,
        reason: super::budget::OverBudget,
    },
    #[error("not loaded: {0}")]
    ShuttingDown(#[from] ExecutorClosed),
}

impl ModuleVersion {
    /// Loads `bytes`, the content of `file`, and checks its metadata; the module is not
    /// initialized yet.
    /// Runs module code (`describe`).
    pub fn open(
        file: &Path,
        bytes: &[u8],
        shadow_dir: &Path,
        log: &slog::Logger,
        clock: Arc<dyn Clock>,
        config_for: impl FnOnce(&str) -> String,
    ) -> Result<ModuleVersion, Refused> {
        let loaded = loader::load(file, bytes, shadow_dir)?;
        let meta = describe(loaded.root, file, loaded.sha256)?;
        let log =
            log.new(slog::o!("module" => meta.name.clone(), "version" => meta.version.clone()));
        let services = ModuleServices::new(log, clock, config_for(&meta.name));
        Ok(ModuleVersion {
            meta,
            generation: 0,
            loaded_at: std::time::SystemTime::now(),
            stats: CallStats::default(),
            shadow: loaded.shadow,
            tables: None,
            root: loaded.root,
            services,
            _library: loaded.library,
        })
    }

    /// Runs the module's init hook; an error refuses the library. Runs module code.
    pub fn init(&self) -> Result<(), Refused> {
        let init = self.root.init();
        init(self.services.as_host_ref())
            .into_result()
            .map_err(|reason| Refused::InitFailed {
                file: self.meta.file.clone(),
                name: self.meta.name.clone(),
                reason: reason.into_string(),
            })
    }

    /// Has the module read `set`, its data tables; an error refuses the version with the file,
    /// line and reason. Runs module code.
    pub fn load_tables(&mut self, set: &TableSet) -> Result<(), Refused> {
        let files: Vec<TableFile<'_>> = set
            .files
            .iter()
            .map(|(name, text)| TableFile {
                name: RStr::from_str(name),
                text: RStr::from_str(text),
            })
            .collect();
        let load = self.root.load_tables();
        match load(self.services.as_host_ref(), RSlice::from_slice(&files)).into_result() {
            Ok(id) => {
                self.tables = Some(LoadedTables {
                    id,
                    sha256: set.sha256.clone(),
                    files: set.files.iter().map(|(name, _)| name.clone()).collect(),
                });
                Ok(())
            }
            Err(refusal) => Err(Refused::Tables {
                file: self.meta.file.clone(),
                name: self.meta.name.clone(),
                table: refusal.file.into_string(),
                line: (refusal.line > 0).then_some(refusal.line),
                reason: refusal.reason.into_string(),
            }),
        }
    }

    /// What the version is known by: its library's sha256, and its tables' if it has any.
    /// Two loads of the same library with other tables are two versions.
    pub fn identity(&self) -> String {
        identity(
            &self.meta.sha256,
            self.tables.as_ref().map(|t| t.sha256.as_str()),
        )
    }

    /// Runs one command for the player of `account`; every other field is JSON text. Runs
    /// module code.
    pub fn call(
        &self,
        cmd: Cmd,
        (data, player, module_data): (&str, &str, &str),
        account: &str,
    ) -> CallOutcome {
        let call = CommandCall {
            cmd: RStr::from_str(cmd.as_str()),
            data: RStr::from_str(data),
            player: RStr::from_str(player),
            module_data: RStr::from_str(module_data),
            tables: self.tables.as_ref().map_or(0, |t| t.id),
            account: RStr::from_str(account),
        };
        let handle = self.root.handle();
        CallOutcome::from(handle(self.services.as_host_ref(), call))
    }

    /// One player's saved data (JSON text, stamped as stored) migrated to schema `to` through
    /// this version's migrations, stamped as it would be stored; or why not (a step failed or
    /// panicked, a schema this version does not know). Runs module code.
    pub fn migrate(&self, stored: &str, to: u32) -> Result<String, String> {
        let migrate = self.root.migrate();
        migrate(self.services.as_host_ref(), RStr::from_str(stored), to)
            .into_result()
            .map(RString::into_string)
            .map_err(RString::into_string)
    }

    /// Runs the module's shutdown hook, then has it free its tables. Runs module code.
    pub fn shutdown(&self) {
        let shutdown = self.root.shutdown();
        shutdown(self.services.as_host_ref());
        if let Some(tables) = &self.tables {
            let drop_tables = self.root.drop_tables();
            drop_tables(self.services.as_host_ref(), tables.id);
        }
    }

    pub fn serves(&self, cmd: Cmd) -> bool {
        self.meta.commands.iter().any(|c| c == cmd.as_str())
    }
}

/// Reads and checks the module's description, copying it into host memory.
fn describe(root: ModuleRoot_Ref, file: &Path, sha256: String) -> Result<ModuleMeta, Refused> {
    let describe = root.describe();
    let info = describe();
    let meta = ModuleMeta {
        name: info.name.as_str().to_owned(),
        prefix: info.prefix.as_str().to_owned(),
        version: info.version.as_str().to_owned(),
        commands: info
            .commands
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        refusals: info
            .refusals
            .iter()
            .map(|r| DeclaredRefusal {
                code: r.code,
                name: r.name.as_str().to_owned(),
            })
            .collect(),
        schema: info.schema,
        migrations: info.migrations.to_vec(),
        tables: info.tables,
        file: file.to_owned(),
        sha256,
    };
    drop(info);
    match metadata_problem(&meta) {
        Some(problem) => Err(Refused::InvalidMetadata {
            file: file.to_owned(),
            problem,
        }),
        None => Ok(meta),
    }
}

fn metadata_problem(meta: &ModuleMeta) -> Option<String> {
    let name_ok = (1..=32).contains(&meta.name.len())
        && meta
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !name_ok {
        return Some(format!(
            "module name `{}` must be 1 to 32 characters of a-z 0-9 _ -",
            meta.name
        ));
    }
    if meta.prefix.len() != 2 || !meta.prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "module `{}` has prefix `{}`, a prefix must be exactly two digits",
            meta.name, meta.prefix
        ));
    }
    if meta.version.is_empty() || meta.version.len() > 64 {
        return Some(format!(
            "module `{}` must declare a version of 1 to 64 characters",
            meta.name
        ));
    }
    if meta.commands.is_empty() {
        return Some(format!("module `{}` declares no commands", meta.name));
    }
    let stray = meta
        .commands
        .iter()
        .find(|c| Cmd::parse(c).is_none_or(|cmd| cmd.prefix() != meta.prefix));
    if let Some(cmd) = stray {
        return Some(format!(
            "module `{}` declares command `{cmd}`, commands must be four digits starting with its prefix {}",
            meta.name, meta.prefix
        ));
    }
    numbering_problem(meta)
        .or_else(|| refusals_problem(meta))
        .or_else(|| schema_problem(meta))
}

/// A module at schema N declares one migration from each schema below N, and no other: its
/// saved data of any older schema can then be upgraded, and downgraded back.
fn schema_problem(meta: &ModuleMeta) -> Option<String> {
    let (name, schema) = (&meta.name, meta.schema);
    if schema == 0 {
        return Some(format!(
            "module `{name}` declares saved-data schema 0: schemas start at 1"
        ));
    }
    if schema == 1 && !meta.migrations.is_empty() {
        return Some(format!(
            "module `{name}` declares migrations but saved-data schema 1: schema 1 needs none; \
             declare `schema:` with the schema its data has now"
        ));
    }
    for (i, from) in meta.migrations.iter().enumerate() {
        if *from == 0 || *from >= schema {
            return Some(format!(
                "module `{name}` declares a migration from schema {from}, but its schema is {schema}: \
                 declare one from each schema 1 to {}",
                schema - 1
            ));
        }
        if meta.migrations[..i].contains(from) {
            return Some(format!(
                "module `{name}` declares two migrations from schema {from}"
            ));
        }
    }
    let missing = (1..schema).find(|from| !meta.migrations.contains(from))?;
    Some(format!(
        "module `{name}` declares saved-data schema {schema} but no migration from schema {missing} \
         to {}: add ({missing}, upgrade, downgrade) to export_module!'s migrations",
        missing + 1
    ))
}

/// Each declared refusal has a positive code and a name of lowercase words, both unique.
fn refusals_problem(meta: &ModuleMeta) -> Option<String> {
    let name = &meta.name;
    for (i, refusal) in meta.refusals.iter().enumerate() {
        let (code, what) = (refusal.code, &refusal.name);
        if code <= 0 {
            return Some(format!(
                "module `{name}` declares refusal `{what}` with code {code}: a refusal's code must be positive"
            ));
        }
        let well_named = (1..=64).contains(&what.len())
            && what
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_named {
            return Some(format!(
                "module `{name}` declares refusal {code} named `{what}`: a refusal's name must be 1 to 64 characters of a-z 0-9 _"
            ));
        }
        if let Some(twin) = meta.refusals[..i]
            .iter()
            .find(|r| r.code == code || r.name == *what)
        {
            return Some(format!(
                "module `{name}` declares refusals `{}` ({}) and `{what}` ({code}): each refusal needs a code and a name of its own",
                twin.name, twin.code
            ));
        }
    }
    None
}

/// The command numbering rule (docs/modules.md, "Command numbers"): a command is answered by
/// the command plus one, so that reply must stay inside the module's prefix and must not be
/// a command of its own; and each command is declared once.
fn numbering_problem(meta: &ModuleMeta) -> Option<String> {
    let name = &meta.name;
    for (i, cmd) in meta.commands.iter().enumerate() {
        if meta.commands[..i].contains(cmd) {
            return Some(format!("module `{name}` declares command `{cmd}` twice"));
        }
        let reply = Cmd::parse(cmd)?.reply();
        if !reply.starts_with(meta.prefix.as_str()) || reply.len() != 4 {
            return Some(format!(
                "module `{name}` declares command `{cmd}`, whose reply `{reply}` would leave its \
                 prefix {} (a reply is the command plus one): give commands odd numbers from {0}01 to {0}97",
                meta.prefix
            ));
        }
        if meta.commands.contains(&reply) {
            return Some(format!(
                "module `{name}` declares both `{cmd}` and `{reply}`, but `{reply}` is the reply \
                 to `{cmd}` (a reply is the command plus one): give commands odd numbers"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;

/// A version's identity ([`ModuleVersion::identity`]) from its library's and tables' hashes.
pub fn identity(library_sha256: &str, tables_sha256: Option<&str>) -> String {
    match tables_sha256 {
        Some(tables) => format!("{library_sha256}+tables:{tables}"),
        None => library_sha256.to_owned(),
    }
}
