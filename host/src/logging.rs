//! Logging: the files of the `[log]` config (by default `host/debug.log`, `game/info.log` and
//! `game/error.log` under the log directory, the last two rotated daily), and a readable
//! stderr log.
//!
//! Nothing that logs waits for a disk or a terminal. A line is formatted by the code that logs
//! it and appended to its output's bounded batch in memory, which that output's writer thread
//! writes out ([`writer`]): each file ([`file`]) and stderr ([`stderr`]) alike. When a batch is
//! full, lines are dropped and counted. The returned [`LogGuard`] writes out everything still
//! waiting when dropped: keep it until the host has shut down.

mod batch;
pub mod file;
mod files;
pub mod format;
mod stderr;
mod writer;

use crate::clock::Clock;
use crate::config::LogConfig;
use files::{FileDrain, OpenFiles};
use prometheus_client::metrics::counter::Counter;
use slog::{o, Drain, Logger, Never, OwnedKVList, Record};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::path::Path;
use std::sync::Arc;
use stderr::{StderrDrain, StderrWriter};
use writer::{Buffering, FLUSH_INTERVAL};

/// Writes out every waiting line when dropped.
pub struct LogGuard {
    stderr: Option<StderrWriter<std::io::Stderr>>,
    files: OpenFiles,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(stderr) = &self.stderr {
            stderr.close();
        }
        self.files.close();
    }
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the log file {path}: {source}")]
pub struct LogError {
    path: String,
    source: std::io::Error,
}

/// The root logger for `config`, writing under `log_dir`. Lines dropped because an output's
/// batch was full are counted in `dropped`.
pub fn init(
    config: &LogConfig,
    log_dir: &Path,
    clock: Arc<dyn Clock>,
    dropped: Counter,
) -> Result<(Logger, LogGuard), LogError> {
    let buffering = Buffering {
        capacity: config.queue_size,
        flush_interval: FLUSH_INTERVAL,
        dropped,
    };
    let (files, open) = FileDrain::open(log_dir, config.files.values(), &buffering, clock)
        .map_err(|(path, source)| LogError { path, source })?;
    let mut outputs = Fanout(Vec::new());
    if let Some(level) = files.lowest_level() {
        outputs.add(files, level);
    }
    let mut stderr_writer = None;
    if let Some(level) = config.stderr.level() {
        let (drain, writer) =
            StderrDrain::start(std::io::stderr(), stderr::wants_color(), buffering).map_err(
                |source| LogError {
                    path: "stderr (its writer thread)".into(),
                    source,
                },
            )?;
        outputs.add(drain, level);
        stderr_writer = Some(writer);
    }
    let log = Logger::root(outputs, o!());
    let guard = LogGuard {
        stderr: stderr_writer,
        files: open,
    };
    Ok((log, guard))
}

/// A logger that writes nothing.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// Each output with its lowest level; a record goes to every output whose level it reaches.
struct Fanout(Vec<(Box<dyn Output>, slog::Level)>);

/// What slog asks of a drain that every thread logs through.
trait Output: Drain<Ok = (), Err = Never> + Send + Sync + RefUnwindSafe + UnwindSafe {}
impl<D: Drain<Ok = (), Err = Never> + Send + Sync + RefUnwindSafe + UnwindSafe> Output for D {}

impl Fanout {
    fn add(&mut self, drain: impl Output + 'static, level: slog::Level) {
        self.0.push((Box::new(drain), level));
    }
}

impl Drain for Fanout {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        for (drain, level) in &self.0 {
            if record.level().is_at_least(*level) {
                drain.log(record, values)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
