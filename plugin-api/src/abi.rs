//! The FFI-safe contract between `game-host` and a module library: the root module every
//! library exports, the host services handed to it, and the values that cross the boundary.
//!
//! Module authors never touch these types: [`export_module!`](crate::export_module) builds
//! the root module for them. The host reads them only in its loader and its call path.
//!
//! # Evolution rules
//!
//! - A library is loaded only if it was built against exactly this crate's version
//!   ([`INTERFACE_VERSION`]); the host refuses every other version with a message naming both.
//! - Any change to a type in this file is a new version of this crate (bump `Cargo.toml`).
//! - New root-module fields go after the last one, behind `#[sabi(last_prefix_field)]`, so that
//!   abi_stable's layout check can tell old and new libraries apart.
//!
//! Every value crossing the boundary is either borrowed for the duration of one call
//! (`RStr<'a>`) or owned by the receiver (`RString`). Strings a library returns are allocated
//! by that library; the host copies them into its own memory before the call ends, because a
//! library's code and vtables leave memory when its version is retired.

// The `StableAbi` derive and `#[sabi_trait]` expand to `unsafe impl`s and `#[no_mangle]`-free
// unsafe glue that abi_stable checks itself; nothing in this file is hand-written unsafe code.
#![allow(unsafe_code)]
// abi_stable's generated names (`ModuleRoot_Ref`, `HostServices_TO`) are not camel case, and
// `#[sabi_trait]` defines impls inside a function body.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

/// The version of this interface crate, which a library must match exactly to be loaded.
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The key under which a player's saved data of a schema above 1 carries its schema, as
/// stored: the glue writes and reads it, the host reads it to tell which version can read the
/// data. Data without it is of schema 1.
pub const SCHEMA_KEY: &str = "$schema";

/// The root module: the one value a module library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModuleRoot_Ref)))]
#[sabi(missing_field(panic))]
pub struct ModuleRoot {
    /// The module's static description; called once per load.
    pub describe: extern "C" fn() -> ModuleInfo,
    /// Called once after loading, before any command. An error refuses the library.
    pub init: extern "C" fn(host: HostRef<'_>) -> RResult<(), RString>,
    /// Runs one command.
    pub handle: extern "C" fn(host: HostRef<'_>, call: CommandCall<'_>) -> CommandOutcome,
    /// Called once when the version is retired, after its last command returned.
    pub shutdown: extern "C" fn(host: HostRef<'_>),
    /// Migrates one player's saved data (JSON text, stamped with its schema as stored) to
    /// schema `to`, through the module's declared migrations; returns it stamped with `to`, as
    /// it would be stored. The host calls it to check a swap's migrations over stored data, and
    /// on a version that stepped back to an older schema, to downgrade data it cannot read.
    pub migrate:
        extern "C" fn(host: HostRef<'_>, data: RStr<'_>, to: u32) -> RResult<RString, RString>,
    /// Reads the module's data tables (the files of `plugins/<module>.tables/`, by name) with
    /// its table reader; returns the id under which the library keeps the value it read, for
    /// [`CommandCall::tables`], or why the tables cannot serve. Only for a module whose
    /// [`ModuleInfo::tables`] is true.
    pub load_tables: extern "C" fn(
        host: HostRef<'_>,
        files: RSlice<'_, TableFile<'_>>,
    ) -> RResult<u64, TableRefusal>,
    /// Frees the tables read under `id`: called once, after the last command that used them.
    #[sabi(last_prefix_field)]
    pub drop_tables: extern "C" fn(host: HostRef<'_>, id: u64),
}

/// One table file, borrowed for the duration of `load_tables`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct TableFile<'a> {
    /// Its name in the tables folder (`goods.csv`).
    pub name: RStr<'a>,
    /// Its content, UTF-8.
    pub text: RStr<'a>,
}

/// Why a module's tables cannot serve.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct TableRefusal {
    /// The file, by its name in the tables folder.
    pub file: RString,
    /// The line (1 is the first), or 0 when the problem is not on one line.
    pub line: u64,
    pub reason: RString,
}

impl RootModule for ModuleRoot_Ref {
    declare_root_module_statics! {ModuleRoot_Ref}
    const BASE_NAME: &'static str = "game_module";
    const NAME: &'static str = "game_module";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// What a module says about itself.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ModuleInfo {
    /// Short lowercase name, such as `mall`.
    pub name: RStr<'static>,
    /// The two digits that route commands to this module, such as `11`.
    pub prefix: RStr<'static>,
    /// The module's own version, free-form (usually its crate version).
    pub version: RStr<'static>,
    /// Every command the module serves, four digits each.
    pub commands: RVec<RStr<'static>>,
    /// Every refusal the module declares.
    pub refusals: RVec<DeclaredRefusal>,
    /// The schema version of the saved data this version writes (1 unless declared).
    pub schema: u32,
    /// The schema each declared migration starts from (it goes one schema up, and back).
    pub migrations: RVec<u32>,
    /// Whether the module reads data tables (`load_tables`).
    pub tables: bool,
}

/// A refusal a module declares: its positive code and its name.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct DeclaredRefusal {
    pub code: i32,
    pub name: RStr<'static>,
}

/// One command, as the host hands it to a module. Every field is JSON text.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct CommandCall<'a> {
    /// The four-digit command, such as `1103`.
    pub cmd: RStr<'a>,
    /// The request's `data` object.
    pub data: RStr<'a>,
    /// The player record shared by all modules (see [`Player`](crate::Player)).
    pub player: RStr<'a>,
    /// This module's own data for this player: a JSON object, `{}` at first. Data of a schema
    /// above 1 carries it under the key `$schema`, which the glue reads, migrates from and
    /// writes; handlers never see it.
    pub module_data: RStr<'a>,
    /// The id of the tables this command reads (from `load_tables`), 0 for none.
    pub tables: u64,
    /// The account the player logs in with.
    pub account: RStr<'a>,
}

/// How a command ended.
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum CommandOutcome {
    /// Success. `player` and `module_data` are the new JSON state, or `RNone` if unchanged;
    /// `effects`, the pushes and group changes ([`crate::effects::Effects`] as JSON), or
    /// `RNone` for none.
    Done {
        data: RString,
        player: ROption<RString>,
        module_data: ROption<RString>,
        effects: ROption<RString>,
    },
    /// A game-level refusal with the module's own positive code; nothing is committed.
    Refused { code: i32, msg: RString },
    /// The module serves no such command.
    UnknownCommand,
    /// The module failed: it panicked, or could not read its input. Nothing is committed.
    Failed { msg: RString },
}

/// Severity of a module's log line.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// What the host offers a module during a call.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Writes a line to the host's log, tagged with the module's name and version.
    fn log(&self, level: LogLevel, message: RStr<'_>);

    /// The host clock, in milliseconds since the Unix epoch (tests can move it).
    fn now_millis(&self) -> i64;

    /// The module's config section (`[modules.<name>]`) as JSON text, `{}` if absent.
    #[sabi(last_prefix_field)]
    fn config_json(&self) -> RString;
}

/// The borrowed host handle passed into every call; a module never keeps it.
pub type HostRef<'a> = HostServices_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>;
