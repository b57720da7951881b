//! One log file: a [`BatchWriter`] whose sink appends to a file that rolls over daily
//! (`info.log` → `info.log.1` → ... → `info.log.<keep>`, then deleted). When lines are written
//! out, and why a request never waits for the disk, is the writer's ([`super::writer`]).
//!
//! Rolling and retention are the `rolling-file` crate's. What is ours is *when*: the day comes
//! from the host clock (so tests move it), and a file left from an earlier day is rolled at
//! its first new line even across a restart.

use super::format::{level_name, Stamp};
use super::writer::{BatchWriter, Buffering, Sink};
use crate::config::{LineFormat, LogFileConfig, Rotation};
use chrono::{DateTime, Local, NaiveDate};
use rolling_file::{RollingCondition, RollingFileAppender};
use std::io::Write;
use std::path::Path;

/// A log file open for appending, with its writer thread.
pub struct LogFile {
    writer: BatchWriter<FileSink>,
    format: LineFormat,
}

/// What the writer thread writes into: the rolling file, in its format.
pub struct FileSink {
    appender: RollingFileAppender<DayRoll>,
    format: LineFormat,
}

impl LogFile {
    /// Opens (creates) `log_dir/<config.path>` and its folder, and starts its writer thread.
    pub fn open(
        log_dir: &Path,
        config: &LogFileConfig,
        buffering: Buffering,
    ) -> std::io::Result<LogFile> {
        let path = log_dir.join(&config.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let roll = DayRoll {
            daily: config.rotate == Rotation::Daily,
            last_day: last_written_day(&path),
        };
        let sink = FileSink {
            appender: RollingFileAppender::new(&path, roll, config.keep)?,
            format: config.format,
        };
        let name = format!("the log file {}", path.display());
        Ok(LogFile {
            writer: BatchWriter::start(sink, buffering, name)?,
            format: config.format,
        })
    }

    pub fn format(&self) -> LineFormat {
        self.format
    }

    /// Appends a line of `level` at `stamp`, written by `write`, or drops and counts it when
    /// the batch is full.
    pub fn push(&self, level: slog::Level, stamp: &Stamp, write: impl FnOnce(&mut Vec<u8>)) {
        self.writer.push(level, stamp, write);
    }

    /// Writes out what is waiting and stops the writer thread; later lines are written by
    /// the code that logs them. The second call is a no-op.
    pub fn close(&self) {
        self.writer.close();
    }

    /// Holds the file as a stuck disk would: nothing is written until the guard is dropped.
    #[cfg(test)]
    pub fn stall(&self) -> std::sync::MutexGuard<'_, FileSink> {
        self.writer.stall()
    }
}

impl Sink for FileSink {
    fn write(&mut self, lines: &[u8], time: &DateTime<Local>) -> std::io::Result<()> {
        self.appender.write_with_datetime(lines, time).map(drop)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.appender.flush()
    }

    fn dropped_warning(&self, stamp: &Stamp, dropped: u64) -> String {
        let location = match self.format {
            LineFormat::Verbose => format!(" [{}:{}]", file!(), line!()),
            LineFormat::Simple => String::new(),
        };
        format!(
            "[{}] [{}]{location} the log writer fell behind: {dropped} lines were dropped here (every drop is counted in the metric game_host_log_messages_dropped_total) dropped={dropped}\n",
            level_name(slog::Level::Warning),
            stamp.text(),
        )
    }
}

/// Rolls at the first line of a new local day.
pub struct DayRoll {
    daily: bool,
    /// The day of the last line written; `None` until one is.
    last_day: Option<NaiveDate>,
}

impl RollingCondition for DayRoll {
    fn should_rollover(&mut self, now: &DateTime<Local>, _size: u64) -> bool {
        let today = now.date_naive();
        let new_day = self.last_day.is_some_and(|day| day != today);
        self.last_day = Some(today);
        self.daily && new_day
    }
}

/// The day an existing, non-empty file was last written, so that a host restarted on a later
/// day rolls it before adding today's lines.
fn last_written_day(path: &Path) -> Option<NaiveDate> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.len() > 0)?;
    let modified: DateTime<Local> = meta.modified().ok()?.into();
    Some(modified.date_naive())
}
