//! `plugin-api`: the interface crate between `game-host` and its game modules.
//!
//! In abi_stable's terms this is the *interface crate*: `plugins/*` are implementation crates
//! (one `cdylib` each) and `host` is the user crate. The host loads a module library, checks
//! that it was built against exactly this crate's version ([`INTERFACE_VERSION`]) with the same
//! type layouts, and routes every command `mmcc` whose first two digits are the module's
//! prefix to it.
//!
//! # Writing a module
//!
//! A module is a `cdylib` crate whose `lib.rs` only declares what it serves; the game rules
//! live in plain Rust files that know nothing of FFI and are unit-tested without a library:
//!
//! ```ignore
//! // lib.rs
//! mod rules;
//!
//! plugin_api::export_module! {
//!     name: "mall",
//!     prefix: "11",
//!     version: env!("CARGO_PKG_VERSION"),
//!     refusals: [rules::NOT_ENOUGH_GOLD],
//!     commands: {
//!         "1101" => rules::list_goods,
//!         "1103" => rules::buy,
//!     },
//! }
//!
//! // rules.rs
//! use plugin_api::{refuse, Ctx, RefusalCode, Reply};
//! use serde_json::{json, Value};
//!
//! pub const NOT_ENOUGH_GOLD: RefusalCode = RefusalCode::new(1, "not_enough_gold");
//!
//! pub fn list_goods(_ctx: &mut Ctx, _data: Value) -> Reply {
//!     Ok(json!({ "goods": [] }))
//! }
//! pub fn buy(ctx: &mut Ctx, data: Value) -> Reply {
//!     if ctx.player.gold < 10 {
//!         return refuse(NOT_ENOUGH_GOLD, "not enough gold");
//!     }
//!     ctx.player.gold -= 10;
//!     Ok(json!({ "gold": ctx.player.gold }))
//! }
//! ```
//!
//! `Cargo.toml` needs `crate-type = ["cdylib", "rlib"]` (the `rlib` lets unit tests link the
//! rules); `plugin-api` is its only dependency that the export needs. See `plugins/mall` for a
//! complete module, or write one with `game-host new-module NAME PREFIX`.
//!
//! A handler gets a [`Ctx`]: the shared [`Player`] record, the module's private data for that
//! player, and the [`Host`] (log, clock, config), and the request `data` as JSON or as any
//! `serde` type (a request that does not fit is refused with the module's `bad_request` code).
//! It returns the reply `data` or a [`Refusal`] of a [`RefusalCode`] the module declared. The
//! host commits `ctx.player` and the module's saved data (`ctx.saved()`, `ctx.save(..)`) in one
//! transaction only when the handler returned `Ok`; commands of one player run one at a time.
//!
//! # Rules for module code
//!
//! A module library is loaded beside its previous version and unloaded when that version
//! retires. Code that breaks these rules keeps the library in memory forever or crashes the
//! host later (docs/modules.md, "Rules that keep unloading safe", gives the measured reasons):
//!
//! - **No `println!`/`eprintln!`**: a library's stdout buffer is never freed. Log with
//!   `ctx.host.info(..)`; the host tags the line with the module's name and version.
//! - **No `thread_local!` holding a type with `Drop`**: it pins the library in memory.
//! - **No `std::thread::current()`**, directly or through a logger that prints thread names:
//!   it crashes the process when a host thread exits after the library is unloaded.
//! - **No threads, no async runtime, no global caches**: the module must own nothing once a
//!   command returns. Keep state in the player record or the module's data, or in the config.
//! - **No `SystemTime::now()`** for game rules: use `ctx.host.now_millis()` / `today()`, so
//!   that tests and the host agree on the date.
//! - **No `unsafe`.** Panics are fine: the glue catches them, the host answers `-5`, logs the
//!   message and location, and keeps serving. No backtrace is captured.

#![deny(unsafe_code)]

pub mod abi;
mod authoring;
pub mod effects;
mod player;
mod tables;

#[doc(hidden)]
pub mod glue;

pub use abi::LogLevel;
pub use abi::INTERFACE_VERSION;
pub use authoring::{
    refuse, Ctx, Handler, Host, Refusal, RefusalCode, Reply, TestHost, BAD_REQUEST,
};
pub use effects::PushTo;
pub use player::{Player, STARTING_GOLD};
pub use tables::{TableError, Tables};

/// Declares a module library: its name, two-digit prefix, version, the refusals it declares,
/// its command table and optional `init` / `shutdown` hooks. Expands to the library's root
/// module, built as a static.
///
/// - `refusals: [NOT_ENOUGH_GOLD, ...]` lists the module's [`RefusalCode`]s (optional).
/// - `bad_request: CODE` is the refusal of a request that does not fit a typed handler's
///   request type (optional; [`BAD_REQUEST`], code 99, by default).
/// - `schema: N` is the schema version of the saved data this version writes (optional; 1 by
///   default). Raise it when the saved data changes shape, and add a migration from the old
///   schema:
/// - `migrations: [(1, upgrade, downgrade), ...]`: for each schema below `N`, an upgrade
///   `fn(Old) -> Result<New, String>` to the next schema and a downgrade
///   `fn(New) -> Result<Old, String>` back (`Old` and `New` are your saved-data types, or
///   `serde_json::Value`; both derive `Serialize` and `Deserialize`). Saved data of an older schema is upgraded when a command reads it,
///   and stored at schema `N` when the command saves (docs/modules.md, "Saved data that
///   changes shape").
/// - `tables: read_tables` names the module's reader of its data tables,
///   `fn(&Tables) -> Result<T, TableError>` (optional): the host reads the files of
///   `plugins/<name>.tables/` with it once per library and tables, and each command reads the
///   value through [`Ctx::tables`] (docs/modules.md, "Data tables").
/// - `init: fn(Host) -> Result<(), String>` runs once after loading; `Err` refuses the library.
/// - `shutdown: fn(Host)` runs once when the version retires.
#[macro_export]
macro_rules! export_module {
    (
        name: $name:literal,
        prefix: $prefix:literal,
        version: $version:expr,
        $(refusals: [$($refusal:path),* $(,)?],)?
        $(bad_request: $bad_request:path,)?
        $(schema: $schema:literal,)?
        $(migrations: [$(($from:literal, $upgrade:path, $downgrade:path)),* $(,)?],)?
        $(tables: $tables:path,)?
        commands: { $($cmd:literal => $handler:path),+ $(,)? }
        $(, init: $init:path)?
        $(, shutdown: $shutdown:path)?
        $(,)?
    ) => {
        // abi_stable's `staticref!` expands to an `unsafe` block, checked by abi_stable, and the
        // library header is a static under the name abi_stable's loader looks up (`unsafe_code`
        // flags `#[export_name]`); neither is written by module authors. The header is built by
        // `glue::lib_header` rather than abi_stable's `#[export_root_module]`, whose expansion
        // names `::abi_stable` and so needs it as a dependency of every module.
        // Items here are not hygienic: their `__module` names keep them from shadowing the
        // author's handlers and hooks.
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::abi::{CommandCall, CommandOutcome, HostRef, ModuleInfo, ModuleRoot, ModuleRoot_Ref};
            use $crate::glue::{self, abi_stable};
            use abi_stable::{prefix_type::WithMetadata, std_types::{RResult, RString}};

            static __MODULE: glue::ModuleDef = glue::ModuleDef {
                name: $name,
                prefix: $prefix,
                version: $version,
                commands: &[$(($cmd, &glue::Typed::new($handler) as &dyn glue::Command)),+],
                refusals: &[$($($refusal),*)?],
                bad_request: glue::bad_request(&[$($bad_request)?]),
                schema: glue::schema(&[$($schema)?]),
                migrations: &[$($(($from, &glue::Steps::new($upgrade, $downgrade) as &dyn glue::Migration)),*)?],
                tables: glue::optional::<&'static dyn glue::TablesReader>(&[$(&glue::Reader::new($tables) as &dyn glue::TablesReader)?]),
                init: glue::optional::<glue::InitHook>(&[$($init)?]),
                shutdown: glue::optional::<glue::ShutdownHook>(&[$($shutdown)?]),
            };

            extern "C" fn __module_describe() -> ModuleInfo {
                glue::describe(&__MODULE)
            }
            extern "C" fn __module_init(host: HostRef<'_>) -> RResult<(), RString> {
                glue::init(&__MODULE, host)
            }
            extern "C" fn __module_handle(host: HostRef<'_>, call: CommandCall<'_>) -> CommandOutcome {
                glue::handle(&__MODULE, host, call)
            }
            extern "C" fn __module_shutdown(host: HostRef<'_>) {
                glue::shutdown(&__MODULE, host)
            }
            extern "C" fn __module_load_tables(host: HostRef<'_>, files: abi_stable::std_types::RSlice<'_, $crate::abi::TableFile<'_>>) -> RResult<u64, $crate::abi::TableRefusal> {
                glue::load_tables(&__MODULE, host, files)
            }
            extern "C" fn __module_drop_tables(host: HostRef<'_>, id: u64) {
                glue::drop_tables(&__MODULE, host, id)
            }
            extern "C" fn __module_migrate(host: HostRef<'_>, data: abi_stable::std_types::RStr<'_>, to: u32) -> RResult<RString, RString> {
                glue::migrate(&__MODULE, host, data, to)
            }

            struct __ModuleRoot;
            impl __ModuleRoot {
                abi_stable::staticref!(const MODULE: WithMetadata<ModuleRoot> = WithMetadata::new(
                    ModuleRoot {
                        describe: __module_describe,
                        init: __module_init,
                        handle: __module_handle,
                        shutdown: __module_shutdown,
                        migrate: __module_migrate,
                        load_tables: __module_load_tables,
                        drop_tables: __module_drop_tables,
                    }
                ));
            }

            impl glue::RootOf for __ModuleRoot {
                fn root() -> ModuleRoot_Ref {
                    ModuleRoot_Ref(__ModuleRoot::MODULE.as_prefix())
                }
            }

            // `abi_stable::library::ROOT_MODULE_LOADER_NAME` (an attribute takes only a
            // literal; plugin-api's tests keep the two equal).
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            static __MODULE_LIB_HEADER: abi_stable::library::LibHeader =
                glue::lib_header::<__ModuleRoot>();
        };
    };
}
