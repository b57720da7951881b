//! The writer thread that every log output shares: lines wait in a bounded [`Batch`], and the
//! thread takes the batch whole and hands it to its [`Sink`] (a rolling file, stderr).
//!
//! When the writer runs: every flush interval ([`FLUSH_INTERVAL`] by default); at once for a
//! warning or an error; when half the batch is used; and a last time when the output is closed
//! (the log guard, at exit). A request only appends to memory: it never waits for the disk or
//! a terminal, and the writer is woken a few times a second, not once per line, which on two
//! cores was a third of a request's cost (bench/RESULTS.md). A crash can lose the last
//! interval's lines.

use super::batch::{Batch, Pushed};
use super::format::Stamp;
use chrono::{DateTime, Local};
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line below warning may wait in memory before it is written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// How an output buffers its lines.
#[derive(Clone)]
pub struct Buffering {
    /// Lines that may wait; beyond them lines are dropped and counted.
    pub capacity: usize,
    pub flush_interval: Duration,
    /// Counts the dropped lines (the metric `game_host_log_messages_dropped_total`).
    pub dropped: Counter,
}

/// Where a writer thread puts the lines.
pub trait Sink: Send + 'static {
    /// Appends `lines` (whole lines of one local day; the first of them logged at `time`).
    fn write(&mut self, lines: &[u8], time: &DateTime<Local>) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
    /// The line, in this output's format, that says `dropped` lines are missing before it.
    fn dropped_warning(&self, stamp: &Stamp, dropped: u64) -> String;
}

/// An output's batch and its writer thread.
pub struct BatchWriter<S: Sink> {
    shared: Arc<Shared<S>>,
    /// Taken by [`BatchWriter::close`] to join the thread.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the code that logs and the writer thread share.
struct Shared<S> {
    waiting: Mutex<Waiting>,
    /// Wakes the writer before its interval is up.
    wake: Condvar,
    /// Held by whoever writes, the writer thread or (once closed) the code that logs.
    sink: Mutex<S>,
    buffering: Buffering,
    /// What a failed write names: `the log file <path>`, `stderr`.
    name: String,
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

impl<S: Sink> BatchWriter<S> {
    /// Starts the writer thread (named `log-writer`) over `sink`.
    pub fn start(sink: S, buffering: Buffering, name: String) -> std::io::Result<BatchWriter<S>> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
            sink: Mutex::new(sink),
            buffering,
            name,
            failed: AtomicBool::new(false),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || shared.run_writer())?
        };
        Ok(BatchWriter {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends a line of `level` at `stamp`, written by `write` (newline included), or drops
    /// and counts it when the batch is full.
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

    /// Holds the output as a stuck disk would: nothing is written until the guard is dropped.
    #[cfg(test)]
    pub fn stall(&self) -> MutexGuard<'_, S> {
        lock(&self.shared.sink)
    }
}

impl<S: Sink> Drop for BatchWriter<S> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<S: Sink> Shared<S> {
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
        // The sink is locked before the batch is taken, so batches are written in order.
        let mut sink = lock(&self.sink);
        std::mem::swap(&mut lock(&self.waiting).batch, spare);
        if spare.is_empty() {
            return;
        }
        let mut written = Ok(());
        for (lines, time) in spare.days() {
            written = written.and_then(|()| sink.write(lines, time));
        }
        if spare.dropped() > 0 {
            // Drops happen only when the batch is full, so it has a last line to date them by.
            let last = spare.days().last().map(|(_, time)| time.timestamp_millis());
            let stamp = Stamp::of(last.unwrap_or_else(|| Local::now().timestamp_millis()));
            let warning = sink.dropped_warning(&stamp, spare.dropped());
            written = written.and_then(|()| sink.write(warning.as_bytes(), &stamp.time));
        }
        written = written.and_then(|()| sink.flush());
        if let Err(e) = written {
            self.report_failure(&e);
        }
        spare.clear();
    }

    fn report_failure(&self, error: &std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            // The log itself is what failed: stderr is all that is left.
            eprintln!("game-host: cannot write {}: {error}", self.name);
        }
    }
}

/// Locks `mutex`, also after a panic elsewhere: a log line is never worth a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
