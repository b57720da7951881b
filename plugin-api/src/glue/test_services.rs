//! Host services shared by the glue's tests.

use crate::abi::{HostServices, LogLevel};
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
