//! The host services one module version sees: its logger, the host clock, its config section.
//!
//! These run inside a module's call frame. A panic here would cross the FFI boundary and
//! abort the process (abi_stable's shims exit on unwind), so every method catches its own.

use crate::clock::Clock;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RStr, RString};
use plugin_api::abi::{HostRef, HostServices, HostServices_TO, LogLevel};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What a module may ask of the host.
pub struct ModuleServices {
    /// Tagged with the module's name and version.
    log: slog::Logger,
    clock: Arc<dyn Clock>,
    /// The module's `[modules.<name>]` section as JSON text.
    config_json: String,
}

impl ModuleServices {
    pub fn new(log: slog::Logger, clock: Arc<dyn Clock>, config_json: String) -> Self {
        ModuleServices {
            log,
            clock,
            config_json,
        }
    }

    /// The borrowed FFI handle passed into one call.
    pub fn as_host_ref(&self) -> HostRef<'_> {
        HostServices_TO::from_ptr(self, TD_Opaque)
    }
}

impl HostServices for ModuleServices {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let log = &self.log;
            let message = message.as_str();
            match level {
                LogLevel::Error => slog::error!(log, "{}", message),
                LogLevel::Warn => slog::warn!(log, "{}", message),
                LogLevel::Info => slog::info!(log, "{}", message),
                LogLevel::Debug => slog::debug!(log, "{}", message),
            }
        }));
    }

    fn now_millis(&self) -> i64 {
        catch_unwind(AssertUnwindSafe(|| self.clock.now_millis())).unwrap_or(0)
    }

    fn config_json(&self) -> RString {
        RString::from(self.config_json.as_str())
    }
}
