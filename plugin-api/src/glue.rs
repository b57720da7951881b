//! The FFI glue that [`export_module!`](crate::export_module) wires into every module library,
//! written once here so that no module author writes `unsafe`, `catch_unwind` or ABI types.
//!
//! Everything here runs inside the module library, on the host's plugin worker threads. It follows
//! the rules of docs/modules.md ("Rules that keep unloading safe"): no thread-locals, no
//! `std::thread::current()`, no threads, no stdout. A panic never crosses the boundary: it becomes
//! a [`CommandOutcome::Failed`] (or an init error) carrying the panic message and location.

use crate::abi::{
    CommandCall, CommandOutcome, DeclaredRefusal, HostRef, ModuleInfo, ModuleRoot_Ref, TableFile,
    TableRefusal,
};
use crate::authoring::{Ctx, Host, RefusalCode, Reply};
use crate::player::Player;
use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};
use abi_stable::std_types::{RNone, ROption, RResult, RSlice, RSome, RStr, RString, RVec};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

mod saved_schema;
mod tables;
pub use saved_schema::{Migration, Steps};
pub use tables::{Reader, TablesReader};

#[doc(hidden)]
pub use abi_stable;

/// An optional init hook: reads config, checks it, may refuse the load with a message.
pub type InitHook = fn(Host<'_>) -> Result<(), String>;
/// An optional shutdown hook, run once when the version is retired.
pub type ShutdownHook = fn(Host<'_>);

/// A module as declared with `export_module!`.
pub struct ModuleDef {
    pub name: &'static str,
    pub prefix: &'static str,
    pub version: &'static str,
    pub commands: &'static [(&'static str, &'static dyn Command)],
    /// The refusals the module declares, besides `bad_request`.
    pub refusals: &'static [RefusalCode],
    /// The refusal of a request that does not fit a typed handler's request type.
    pub bad_request: RefusalCode,
    /// The schema version of the saved data this version writes.
    pub schema: u32,
    /// Each migration, by the schema it starts from.
    pub migrations: &'static [(u32, &'static dyn Migration)],
    /// The reader of the module's data tables, if it has any.
    pub tables: Option<&'static dyn TablesReader>,
    pub init: Option<InitHook>,
    pub shutdown: Option<ShutdownHook>,
}

/// A command's handler, whatever type it takes its request as.
pub trait Command: Sync {
    /// Reads the request as the handler's type and runs the handler; `Err` names what in the
    /// request did not fit.
    fn run(&self, ctx: &mut Ctx<'_>, request: Value) -> Result<Reply, String>;
    /// Whether a request can fail to fit (the handler does not take any JSON value).
    fn is_typed(&self) -> bool;
}

/// A handler `fn(&mut Ctx, R) -> Reply` as a [`Command`]: how the macro stores each one.
pub struct Typed<F, R> {
    handler: F,
    request: PhantomData<fn(R)>,
}

impl<F, R> Typed<F, R>
where
    F: Fn(&mut Ctx<'_>, R) -> Reply,
{
    pub const fn new(handler: F) -> Self {
        Typed {
            handler,
            request: PhantomData,
        }
    }
}

impl<F, R> Command for Typed<F, R>
where
    F: Fn(&mut Ctx<'_>, R) -> Reply + Sync,
    R: DeserializeOwned + 'static,
{
    fn run(&self, ctx: &mut Ctx<'_>, request: Value) -> Result<Reply, String> {
        // A handler that takes any JSON gets the value as it is: deserializing a `Value` into a
        // `Value` would rebuild every node of it.
        let mut as_is = Some(request);
        if let Some(request) = (&mut as_is as &mut dyn Any).downcast_mut::<Option<R>>() {
            let request = request.take().expect("taken once");
            return Ok((self.handler)(ctx, request));
        }
        let request = read_naming_the_field(as_is.expect("not taken"))?;
        Ok((self.handler)(ctx, request))
    }

    fn is_typed(&self) -> bool {
        TypeId::of::<R>() != TypeId::of::<Value>()
    }
}

/// `value` as a `T`, or why it does not fit, naming the field (`` `gold`: invalid type ``).
fn read_naming_the_field<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string().as_str() {
        "." => e.inner().to_string(),
        path => format!("`{path}`: {}", e.inner()),
    })
}

/// A module's root, as [`export_module!`](crate::export_module) builds it.
pub trait RootOf {
    fn root() -> ModuleRoot_Ref;
}

/// Hands abi_stable's loader the root module of `M`, turning a panic into an error.
extern "C" fn construct_root<M: RootOf>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(M::root)
}

/// The header abi_stable's loader reads from a library: its ABI version, the root module's
/// name, version and type layout (checked against the host's), and how to build the root.
/// What `#[abi_stable::export_root_module]` builds, written here so that a module's crate
/// needs no abi_stable dependency of its own (that attribute's expansion names `::abi_stable`).
#[allow(unsafe_code)]
pub const fn lib_header<M: RootOf>() -> LibHeader {
    // SAFETY: `from_constructor` requires that the constructor's `PrefixRef<ErasedPrefix>` be
    // one cast from a `PrefixRef` of the module type given, here `ModuleRoot_Ref`.
    // `construct_root::<M>` returns what `__call_root_module_loader` makes of `M::root()`, a
    // `ModuleRoot_Ref`: its prefix reference cast to `ErasedPrefix`, as the attribute's
    // expansion does for a function returning `ModuleRoot_Ref`.
    unsafe {
        LibHeader::from_constructor::<ModuleRoot_Ref>(construct_root::<M>, CheckTypeLayout::Yes)
    }
}

/// `Some(first)` of a zero- or one-element list: how the macro spells an optional hook.
pub const fn optional<T: Copy>(hooks: &[T]) -> Option<T> {
    match hooks {
        [hook, ..] => Some(*hook),
        [] => None,
    }
}

/// The module's schema if it declares one, else 1.
pub const fn schema(declared: &[u32]) -> u32 {
    match declared {
        [schema, ..] => *schema,
        [] => 1,
    }
}

/// The module's `bad_request` refusal if it declares one, else [`crate::BAD_REQUEST`].
pub const fn bad_request(declared: &[RefusalCode]) -> RefusalCode {
    match declared {
        [code, ..] => *code,
        [] => crate::BAD_REQUEST,
    }
}

pub fn describe(def: &ModuleDef) -> ModuleInfo {
    ModuleInfo {
        name: RStr::from_str(def.name),
        prefix: RStr::from_str(def.prefix),
        version: RStr::from_str(def.version),
        commands: def
            .commands
            .iter()
            .map(|(cmd, _)| RStr::from_str(cmd))
            .collect::<RVec<_>>(),
        refusals: declared_refusals(def)
            .map(|refusal| DeclaredRefusal {
                code: refusal.code,
                name: RStr::from_str(refusal.name),
            })
            .collect(),
        schema: def.schema,
        migrations: def.migrations.iter().map(|(from, _)| *from).collect(),
        tables: def.tables.is_some(),
    }
}

/// The module's refusals, with `bad_request` among them if a handler is typed (the host may
/// answer it) or if the module names its own (its handlers may refuse with it).
fn declared_refusals(def: &ModuleDef) -> impl Iterator<Item = RefusalCode> + '_ {
    let typed = def.commands.iter().any(|(_, command)| command.is_typed());
    let own = def.bad_request != crate::BAD_REQUEST;
    let bad_request =
        ((typed || own) && !def.refusals.contains(&def.bad_request)).then_some(def.bad_request);
    def.refusals.iter().copied().chain(bad_request)
}

pub fn init(def: &ModuleDef, host: HostRef<'_>) -> RResult<(), RString> {
    install_panic_hook();
    let host = Host::new(&host);
    let result = match catch(host, || def.init.map_or(Ok(()), |init| init(host))) {
        Ok(result) => result,
        Err(panic_msg) => Err(format!("init panicked: {panic_msg}")),
    };
    result.map_err(RString::from).into()
}

pub fn handle(def: &ModuleDef, host: HostRef<'_>, call: CommandCall<'_>) -> CommandOutcome {
    let Some(&(_, command)) = def
        .commands
        .iter()
        .find(|(cmd, _)| *cmd == call.cmd.as_str())
    else {
        return CommandOutcome::UnknownCommand;
    };
    let host = host_of(&host);
    catch(host, || run(def, command, host, call)).unwrap_or_else(|panic_msg| {
        CommandOutcome::Failed {
            msg: format!("panicked: {panic_msg}").into(),
        }
    })
}

pub fn shutdown(def: &ModuleDef, host: HostRef<'_>) {
    let host = Host::new(&host);
    if let Some(shutdown) = def.shutdown {
        // A failed shutdown hook is only logged (by `catch`): the version is leaving anyway.
        let _ = catch(host, || shutdown(host));
    }
}

/// Migrates stored data (JSON text with its stamp) to schema `to`: the root module's `migrate`.
/// A failing or panicking step is an error naming the schemas and the reason.
pub fn migrate(
    def: &ModuleDef,
    host: HostRef<'_>,
    data: RStr<'_>,
    to: u32,
) -> RResult<RString, RString> {
    let host = host_of(&host);
    let migrated = catch(host, || {
        saved_schema::migrate_stored(def, data.as_str(), to)
    })
    .unwrap_or_else(|panic_msg| Err(format!("a migration step panicked: {panic_msg}")));
    migrated.map(RString::from).map_err(RString::from).into()
}

/// Reads the module's tables: the root module's `load_tables`. A panicking reader is a
/// refusal naming no line.
pub fn load_tables(
    def: &ModuleDef,
    host: HostRef<'_>,
    files: RSlice<'_, TableFile<'_>>,
) -> RResult<u64, TableRefusal> {
    let host = host_of(&host);
    let Some(reader) = def.tables else {
        return RResult::RErr(TableRefusal {
            file: RString::new(),
            line: 0,
            reason: format!("module `{}` declares no tables", def.name).into(),
        });
    };
    let loaded =
        catch(host, || tables::load(def.name, reader, files)).unwrap_or_else(|panic_msg| {
            Err(TableRefusal {
                file: RString::new(),
                line: 0,
                reason: format!("the table reader panicked: {panic_msg}").into(),
            })
        });
    loaded.into()
}

/// Frees tables read by [`load_tables`]: the root module's `drop_tables`.
pub fn drop_tables(_def: &ModuleDef, host: HostRef<'_>, id: u64) {
    let host = host_of(&host);
    // Dropping the module's value runs its code: a panic there is only logged.
    let _ = catch(host, || tables::free(id));
}

/// The [`Host`] that [`handle`] gives a handler for the host handle `host`.
///
/// Public so that benchmarks can run a handler alone, with the same host services that a call
/// through the library would use.
pub fn host_of<'a>(host: &'a HostRef<'_>) -> Host<'a> {
    Host::new(host)
}

/// Decodes the call, runs the handler, encodes what changed.
fn run(
    def: &ModuleDef,
    command: &dyn Command,
    host: Host<'_>,
    call: CommandCall<'_>,
) -> CommandOutcome {
    let decoded = (
        serde_json::from_str::<Value>(call.data.as_str()),
        serde_json::from_str::<Player>(call.player.as_str()),
        serde_json::from_str::<Map<String, Value>>(call.module_data.as_str()),
    );
    let (data, player, stored) = match decoded {
        (Ok(d), Ok(p), Ok(m)) => (d, p, m),
        (d, p, m) => {
            let why = [d.err(), p.err(), m.err()].into_iter().flatten().next();
            return failed(format!("could not read the call: {why:?}"));
        }
    };
    let module_data = match saved_schema::read(def, stored) {
        Ok(module_data) => module_data,
        Err(why) => return failed(why),
    };
    let tables = match call.tables {
        0 => None,
        id => match tables::get(id) {
            Some(tables) => Some(tables),
            None => {
                return failed(format!(
                    "the call names tables {id}, which this library does not hold (never read, or freed)"
                ))
            }
        },
    };
    let mut ctx = Ctx::new(player.clone(), module_data.clone(), host)
        .with_read_tables(tables)
        .with_account(call.account.as_str());
    let reply = command.run(&mut ctx, data).unwrap_or_else(|misfit| {
        Err(def.bad_request.because(format!(
            "the request does not fit command {}: {misfit}",
            call.cmd
        )))
    });
    match reply {
        Ok(reply) => {
            let module_data = if module_data == ctx.saved {
                RNone
            } else {
                match saved_schema::write(def, std::mem::take(&mut ctx.saved)) {
                    Ok(stamped) => RSome(to_json(&stamped).into()),
                    Err(why) => return failed(why),
                }
            };
            let effects = ctx.take_effects();
            CommandOutcome::Done {
                data: to_json(&reply).into(),
                player: changed(&player, &ctx.player),
                module_data,
                effects: if effects.is_empty() {
                    RNone
                } else {
                    RSome(to_json(&effects).into())
                },
            }
        }
        Err(refusal) => CommandOutcome::Refused {
            code: refusal.code,
            msg: refusal.msg.into(),
        },
    }
}

fn changed<T: PartialEq + serde::Serialize>(before: &T, after: &T) -> ROption<RString> {
    if before == after {
        RNone
    } else {
        RSome(to_json(after).into())
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Values built from serde_json types and `Player` always serialize.
    serde_json::to_string(value).expect("a JSON value serializes")
}

fn failed(msg: String) -> CommandOutcome {
    CommandOutcome::Failed { msg: msg.into() }
}

/// The message and location of the last panic in this library, left by the panic hook.
/// A `Mutex` rather than a thread-local: thread-locals with destructors pin the library in
/// memory (docs/modules.md). Panics on two threads at once may swap messages; both still fail.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs `f`, turning a panic into its message, and logs the panic through the host.
fn catch<T>(host: Host<'_>, f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let from_hook = LAST_PANIC.lock().ok().and_then(|mut last| last.take());
        let msg = from_hook.unwrap_or_else(|| payload_text(payload.as_ref()).to_owned());
        host.error(&format!("module panicked: {msg}"));
        msg
    })
}

/// Installs this library's panic hook once: it records the message and location for `catch`
/// and prints nothing, so no backtrace is ever captured (that leaks ~21 MB per library).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let msg = payload_text(info.payload());
            let text = match info.location() {
                Some(at) => format!("{msg} (at {}:{})", at.file(), at.line()),
                None => msg.to_owned(),
            };
            // In this crate's own tests the hook is process-wide: keep failures readable.
            #[cfg(test)]
            eprintln!("panicked: {text}");
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(text);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic with a non-string payload"
    }
}

#[cfg(test)]
mod test_services;
#[cfg(test)]
mod tests;
