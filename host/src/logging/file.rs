//! One log file: a slog drain that formats lines and appends them to a file that rolls over
//! daily (`info.log` → `info.log.1` → ... → `info.log.<keep>`, then deleted).
//!
//! Lines are buffered and written out every [`FLUSH_INTERVAL`] by a flusher thread, at once
//! for warnings and errors, and when the drain is dropped (the log guard, at exit). A write
//! and a flush per line were a third of a request's cost under load (bench/RESULTS.md); a
//! crash can now lose the last interval's info lines, as it could always lose the lines still
//! queued for the writer thread.
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
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long an info or debug line may wait in the buffer before it is written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

type Appender = Mutex<RollingFileAppender<DayRoll>>;

/// A log file as a drain. Lines below the file's level are filtered before it.
pub struct FileDrain {
    // Shared with the flusher thread, which holds it only to flush; otherwise only the
    // logging thread locks it, for one write at a time.
    appender: Arc<Appender>,
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
        let appender = Arc::new(Mutex::new(RollingFileAppender::new(
            &path,
            roll,
            config.keep,
        )?));
        let flusher = Arc::downgrade(&appender);
        std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || flush_every_interval(&flusher))?;
        Ok(FileDrain {
            appender,
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
        let mut written = appender
            .write_with_datetime(line.as_bytes(), &now)
            .map(drop);
        if record.level().is_at_least(slog::Level::Warning) {
            written = written.and_then(|()| appender.flush());
        }
        if let Err(e) = written {
            self.report_failure(&e);
        }
        Ok(())
    }
}

impl FileDrain {
    fn report_failure(&self, error: &std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            // The log itself is what failed: stderr is all that is left.
            eprintln!(
                "game-host: cannot write the log file {}: {error}",
                self.path
            );
        }
    }
}

impl Drop for FileDrain {
    fn drop(&mut self) {
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = appender.flush() {
            self.report_failure(&e);
        }
    }
}

/// The flusher thread's loop: ends once the drain is gone.
fn flush_every_interval(appender: &Weak<Appender>) {
    loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let Some(appender) = appender.upgrade() else {
            return;
        };
        // A failure shows in the next write, which the drain reports.
        let _ = appender.lock().unwrap_or_else(|e| e.into_inner()).flush();
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
