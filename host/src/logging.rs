//! Logging: the files of the `[log]` config (by default `host/debug.log`, `game/info.log` and
//! `game/error.log` under the log directory, the last two rotated daily), and a readable
//! stderr log.
//!
//! Every line goes through one bounded queue to one writer thread ([`queue`]), so a slow disk
//! never blocks a request; when the queue is full lines are dropped and counted. The returned
//! [`LogGuard`] flushes the queue when dropped: keep it until the host has shut down.

pub mod file;
pub mod format;
mod queue;

use crate::clock::Clock;
use crate::config::{LevelName, LogConfig};
use file::FileDrain;
use prometheus_client::metrics::counter::Counter;
use queue::DroppingQueue;
use slog::{o, Drain, Logger, Never, OwnedKVList, Record};
use std::path::Path;
use std::sync::Arc;

/// Flushes the log when dropped: every line logged before is written.
pub struct LogGuard {
    _writer: slog_async::AsyncGuard,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the log file {path}: {source}")]
pub struct LogError {
    path: String,
    source: std::io::Error,
}

/// The root logger for `config`, writing under `log_dir`. Lines dropped because the queue was
/// full are counted in `dropped`.
pub fn init(
    config: &LogConfig,
    log_dir: &Path,
    clock: Arc<dyn Clock>,
    dropped: Counter,
) -> Result<(Logger, LogGuard), LogError> {
    let mut outputs = Fanout(Vec::new());
    if let Some(level) = config.stderr.level() {
        let decorator = slog_term::TermDecorator::new().stderr().build();
        let stderr = slog_term::FullFormat::new(decorator).build();
        outputs.add(stderr.ignore_res(), level);
    }
    for file in config.files.values() {
        let Some(level) = file.level.level() else {
            continue;
        };
        let drain = FileDrain::open(log_dir, file, clock.clone()).map_err(|source| LogError {
            path: log_dir.join(&file.path).display().to_string(),
            source,
        })?;
        outputs.add(drain, level);
    }
    let (queue, writer) = DroppingQueue::start(outputs, config.queue_size, dropped);
    // Lines below every output's level are not even queued.
    let lowest = lowest_level(config).unwrap_or(slog::Level::Critical);
    let log = Logger::root(queue.filter_level(lowest).ignore_res(), o!());
    Ok((log, LogGuard { _writer: writer }))
}

/// A logger that writes nothing.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// Each output with its lowest level; a record goes to every output whose level it reaches.
struct Fanout(Vec<(Box<dyn Drain<Ok = (), Err = Never> + Send>, slog::Level)>);

impl Fanout {
    fn add(
        &mut self,
        drain: impl Drain<Ok = (), Err = Never> + Send + 'static,
        level: slog::Level,
    ) {
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

/// The lowest level any output wants.
fn lowest_level(config: &LogConfig) -> Option<slog::Level> {
    std::iter::once(config.stderr)
        .chain(config.files.values().map(|f| f.level))
        .filter_map(LevelName::level)
        .max_by_key(|level| level.as_usize())
}

#[cfg(test)]
mod tests;
