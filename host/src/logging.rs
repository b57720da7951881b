//! Logging: a readable stderr log and a full debug log file under the log directory.
//!
//! Both go through slog-async, so a slow disk never blocks a request; a full queue drops
//! lines rather than wait. The returned guard flushes the queue when dropped: keep it until
//! the host has shut down.

use slog::{o, Drain, Level, Logger};
use std::fs::OpenOptions;
use std::path::Path;

/// Flushes the log when dropped.
pub struct LogGuard {
    _guards: Vec<slog_async::AsyncGuard>,
}

/// The root logger: stderr at `level`, and `<log_dir>/host/debug.log` at DEBUG.
pub fn init(log_dir: &Path, level: &str) -> std::io::Result<(Logger, LogGuard)> {
    let level = parse_level(level);
    let stderr = slog_term::FullFormat::new(slog_term::TermDecorator::new().stderr().build())
        .build()
        .fuse();
    let (stderr, stderr_guard) =
        slog_async::Async::new(stderr.filter_level(level).fuse()).build_with_guard();

    let dir = log_dir.join("host");
    std::fs::create_dir_all(&dir)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("debug.log"))?;
    let file = slog_term::FullFormat::new(slog_term::PlainDecorator::new(file))
        .build()
        .fuse();
    let (file, file_guard) =
        slog_async::Async::new(file.filter_level(Level::Debug).fuse()).build_with_guard();

    let log = Logger::root(slog::Duplicate::new(stderr, file).fuse(), o!());
    Ok((
        log,
        LogGuard {
            _guards: vec![stderr_guard, file_guard],
        },
    ))
}

/// A logger that writes nothing.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

fn parse_level(level: &str) -> Level {
    match level {
        "error" => Level::Error,
        "warn" => Level::Warning,
        "debug" => Level::Debug,
        "trace" => Level::Trace,
        _ => Level::Info,
    }
}
