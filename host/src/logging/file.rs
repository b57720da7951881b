//! One log file and its writer thread. Lines wait in a [`Batch`]; the writer takes the batch
//! whole and appends it to a file that rolls over daily (`info.log` → `info.log.1` → ... →
//! `info.log.<keep>`, then deleted).
//!
//! When the writer runs: every flush interval ([`FLUSH_INTERVAL`] by default); at once for a
//! warning or an error; when half the batch is used; and a last time when the file is closed
//! (the log guard, at exit). A request only appends to memory: it never waits for the disk,
//! and the writer is woken a few times a second, not once per line, which on two cores was a
//! third of a request's cost (bench/RESULTS.md). A crash can lose the last interval's lines.
//!
//! Rolling and retention are the `rolling-file` crate's. What is ours is *when*: the day comes
//! from the host clock (so tests move it), and a file left from an earlier day is rolled at
//! its first new line even across a restart.

use super::batch::{Batch, Pushed};
use super::format::{level_name, Stamp};
use crate::config::{LineFormat, LogFileConfig, Rotation};
use chrono::{DateTime, Local, NaiveDate};
use prometheus_client::metrics::counter::Counter;
use rolling_file::{RollingCondition, RollingFileAppender};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line below warning may wait in memory before it is written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// How a file buffers its lines.
#[derive(Clone)]
pub struct Buffering {
    /// Lines that may wait; beyond them lines are dropped and counted.
    pub capacity: usize,
    pub flush_interval: Duration,
    /// Counts the dropped lines (the metric `game_host_log_messages_dropped_total`).
    pub dropped: Counter,
}

/// A log file open for appending, with its writer thread.
pub struct LogFile {
    shared: Arc<Shared>,
    /// Taken by [`LogFile::close`] to join the thread.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the code that logs and the writer thread share.
struct Shared {
    waiting: Mutex<Waiting>,
    /// Wakes the writer before its interval is up.
    wake: Condvar,
    /// Held by whoever writes, the writer thread or (once closed) the code that logs.
    appender: Mutex<RollingFileAppender<DayRoll>>,
    format: LineFormat,
    buffering: Buffering,
    path: String,
    /// Set once a write failed, so a full disk is reported once, not per line.
    failed: AtomicBool,
}

#[derive(Default)]
struct Waiting {
    batch: Batch,
    /// The writer should run now rather than at the end of its interval.
    urgent: bool,
    /// No writer thread any more: whoever logs writes.
    closed: bool,
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
        let appender = RollingFileAppender::new(&path, roll, config.keep)?;
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
            appender: Mutex::new(appender),
            format: config.format,
            buffering,
            path: path.display().to_string(),
            failed: AtomicBool::new(false),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || shared.run_writer())?
        };
        Ok(LogFile {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn format(&self) -> LineFormat {
        self.shared.format
    }

    /// Appends a line of `level` at `stamp`, written by `write`, or drops and counts it when
    /// the batch is full.
    pub fn push(&self, level: slog::Level, stamp: &Stamp, write: impl FnOnce(&mut Vec<u8>)) {
        let shared = &self.shared;
        let mut waiting = lock(&shared.waiting);
        let pushed = waiting.batch.push(shared.buffering.capacity, stamp, write);
        match pushed {
            Pushed::Dropped => {
                shared.buffering.dropped.inc();
            }
            Pushed::Kept { lines } => {
                let urgent = level.is_at_least(slog::Level::Warning)
                    || lines == shared.buffering.capacity.div_ceil(2);
                if waiting.closed {
                    drop(waiting);
                    shared.write_out(&mut Batch::default());
                } else if urgent && !waiting.urgent {
                    waiting.urgent = true;
                    shared.wake.notify_one();
                }
            }
        }
    }

    /// Writes out what is waiting and stops the writer thread; later lines are written by
    /// the code that logs them. Called by the log guard and on drop; the second call is a no-op.
    pub fn close(&self) {
        let Some(writer) = lock(&self.writer).take() else {
            return;
        };
        lock(&self.shared.waiting).closed = true;
        self.shared.wake.notify_one();
        let _ = writer.join();
        // Lines that came between the writer's last batch and `closed`.
        self.shared.write_out(&mut Batch::default());
    }

    /// Holds the file as a stuck disk would: nothing is written until the guard is dropped.
    #[cfg(test)]
    pub fn stall(&self) -> MutexGuard<'_, RollingFileAppender<DayRoll>> {
        lock(&self.shared.appender)
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// The writer thread: writes the batch out every interval, or sooner when woken.
    fn run_writer(&self) {
        let mut spare = Batch::default();
        loop {
            let closed = {
                let waiting = lock(&self.waiting);
                let (mut waiting, _) = self
                    .wake
                    .wait_timeout_while(waiting, self.buffering.flush_interval, |w| {
                        !w.urgent && !w.closed
                    })
                    .unwrap_or_else(|e| e.into_inner());
                waiting.urgent = false;
                waiting.closed
            };
            self.write_out(&mut spare);
            if closed {
                return;
            }
        }
    }

    /// Takes the waiting lines (swapping in `spare`, whose memory is reused) and writes them.
    fn write_out(&self, spare: &mut Batch) {
        // The appender is locked before the batch is taken, so batches are written in order.
        let mut appender = lock(&self.appender);
        std::mem::swap(&mut lock(&self.waiting).batch, spare);
        if spare.is_empty() {
            return;
        }
        let mut written = Ok(());
        for (lines, time) in spare.days() {
            written = written.and_then(|()| appender.write_with_datetime(lines, time).map(drop));
        }
        if spare.dropped() > 0 {
            // Drops happen only when the batch is full, so it has a last line to date them by.
            let last = spare.days().last().map(|(_, time)| time.timestamp_millis());
            let stamp = Stamp::of(last.unwrap_or_else(|| Local::now().timestamp_millis()));
            let warning = self.dropped_warning(&stamp, spare.dropped());
            written = written.and_then(|()| {
                appender
                    .write_with_datetime(warning.as_bytes(), &stamp.time)
                    .map(drop)
            });
        }
        written = written.and_then(|()| appender.flush());
        if let Err(e) = written {
            self.report_failure(&e);
        }
        spare.clear();
    }

    /// The line that says lines are missing before it.
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

/// Locks `mutex`, also after a panic elsewhere: a log line is never worth a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
