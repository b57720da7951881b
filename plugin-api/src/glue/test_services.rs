//! Host services, and a command call through them, shared by the glue's tests.

use super::{handle, ModuleDef};
use crate::abi::{CommandCall, CommandOutcome, HostServices, HostServices_TO, LogLevel};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RStr, RString};

/// Host services for these tests: a fixed clock, a config, and the lines logged.
#[derive(Default)]
pub(crate) struct Services {
    pub config: String,
    pub logs: std::sync::Mutex<Vec<(LogLevel, String)>>,
}

impl HostServices for Services {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.logs
            .lock()
            .unwrap()
            .push((level, message.as_str().to_owned()));
    }
    fn now_millis(&self) -> i64 {
        86_400_000 * 3 + 1
    }
    fn config_json(&self) -> RString {
        self.config.as_str().into()
    }
}

pub(crate) const PLAYER: &str =
    r#"{"player_id":"p","name":"n","head_img":"","gold":10,"diamond":0,"items":{}}"#;

/// Runs `cmd` of `def` as a library call would: request `data`, the player [`PLAYER`], the
/// module's stored data `module_data`.
pub(crate) fn call(
    def: &ModuleDef,
    services: &Services,
    cmd: &str,
    data: &str,
    module_data: &str,
) -> CommandOutcome {
    let host = HostServices_TO::from_ptr(services, TD_Opaque);
    let call = CommandCall {
        cmd: RStr::from_str(cmd),
        data: RStr::from_str(data),
        player: RStr::from_str(PLAYER),
        module_data: RStr::from_str(module_data),
        tables: 0,
        account: RStr::from_str("tester"),
    };
    handle(def, host, call)
}

/// Held by each test that makes module code panic: the glue's panic hook keeps the last
/// panic's message in one process-wide slot (as in a library), and two tests panicking at
/// once would read each other's.
pub(crate) static PANICKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`PANICKING`], taken even if a test that held it failed.
pub(crate) fn one_panic_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    PANICKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
