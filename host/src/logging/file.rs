//! One log file: a slog drain that formats lines and appends them to a file that rolls over
//! daily (`info.log` → `info.log.1` → ... → `info.log.<keep>`, then deleted).
//!
//! Rolling and retention are the `rolling-file` crate's. What is ours is *when*: the day comes
//! from the host clock (so tests move it), and a file left from an earlier day is rolled at
//! its first new line even across a restart.

use super::format::write_line;
use crate::clock::Clock;
use crate::config::{LineFormat, LogFileConfig, Rotation};
use chrono::{DateTime, Local, NaiveDate, TimeZone};
use rolling_file::{RollingCondition, RollingFileAppender};
use slog::{Drain, Never, OwnedKVList, Record};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A log file as a drain. Lines below the file's level are filtered before it.
pub struct FileDrain {
    // A mutex because `Drain::log` takes `&self`; only the logging thread calls it, so it is
    // never contended, and it is never held across anything but one write.
    appender: Mutex<RollingFileAppender<DayRoll>>,
    format: LineFormat,
    clock: Arc<dyn Clock>,
    path: String,
    /// Set once a write failed, so a full disk is reported once, not per line.
    failed: AtomicBool,
}

impl FileDrain {
    /// Opens (creates) `log_dir/<config.path>` and its folder.
    pub fn open(
        log_dir: &Path,
        config: &LogFileConfig,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<FileDrain> {
        let path = log_dir.join(&config.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let roll = DayRoll {
            daily: config.rotate == Rotation::Daily,
            last_day: last_written_day(&path),
        };
        Ok(FileDrain {
            appender: Mutex::new(RollingFileAppender::new(&path, roll, config.keep)?),
            format: config.format,
            clock,
            path: path.display().to_string(),
            failed: AtomicBool::new(false),
        })
    }
}

impl Drain for FileDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        let now = local_time(self.clock.now_millis());
        let mut line = String::with_capacity(160);
        write_line(&mut line, self.format, &now, record, values);
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        let written = appender
            .write_with_datetime(line.as_bytes(), &now)
            .and_then(|_| appender.flush());
        if let Err(e) = written {
            if !self.failed.swap(true, Ordering::Relaxed) {
                // The log itself is what failed: stderr is all that is left.
                eprintln!("game-host: cannot write the log file {}: {e}", self.path);
            }
        }
        Ok(())
    }
}

/// Milliseconds since the epoch as local time.
pub fn local_time(millis: i64) -> DateTime<Local> {
    Local
        .timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(Local::now)
}

/// Rolls at the first line of a new local day.
struct DayRoll {
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
