//! One access line per request and its count in the metrics: method, path, status, `ret`,
//! command, player and time, formatted without building strings it does not need.

use crate::state::AppState;
use hyper::Method;
use std::time::Instant;

/// What the access line reports beside method, path and status.
#[derive(Default)]
pub(crate) struct Access {
    pub cmd: Option<String>,
    pub reply_cmd: Option<String>,
    pub player: Option<String>,
}

/// Writes a request's access line and counts it in the metrics. `ret` is `None` for a file,
/// which has none.
pub(crate) fn finish(
    state: &AppState,
    method: &Method,
    path: &str,
    status: u16,
    ret: Option<i64>,
    access: &Access,
    started: Instant,
) {
    let elapsed = started.elapsed();
    slog::info!(state.log, "request";
        "method" => %method, "path" => path, "status" => status, "ret" => %Ret(ret),
        "cmd" => access.cmd.as_deref().unwrap_or("-"), "player" => access.player.as_deref().unwrap_or("-"),
        "ms" => %Millis(elapsed));
    // A command no module has (-1) is not a label of its own: anyone can send 10,000 of them.
    // A reply without `ret` (a file, the switch to a socket) ran no command.
    let known_cmd = match ret {
        None => Some(""),
        Some(-1) => None,
        Some(_) => access.cmd.as_deref(),
    };
    state
        .metrics
        .request_finished(path, known_cmd, ret.unwrap_or(0), elapsed.as_secs_f64());
}

/// A reply's `ret` as the access line writes it: `-` when there is none.
struct Ret(Option<i64>);

impl std::fmt::Display for Ret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ret) => write!(f, "{ret}"),
            None => f.write_str("-"),
        }
    }
}

/// A duration as the access line writes it: milliseconds with three decimals.
struct Millis(std::time::Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = self.0.as_micros();
        write!(f, "{}.{:03}", micros / 1000, micros % 1000)
    }
}
