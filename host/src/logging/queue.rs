//! The bounded queue between the code that logs and the thread that writes: a request never
//! waits for the disk.
//!
//! slog-async's `AsyncCore` is the queue and the thread; this drain decides what happens when
//! the queue is full: the line is dropped and counted (the counter is the metric
//! `game_host_log_messages_dropped_total`), and the first time lines were dropped a warning
//! saying so goes into the log once there is room again.

use prometheus_client::metrics::counter::Counter;
use slog::{Drain, Never, OwnedKVList, Record};
use slog_async::{AsyncCore, AsyncError, AsyncGuard};
use std::sync::atomic::{AtomicBool, Ordering};

/// A drain that hands records to the writer thread, or drops and counts them.
pub struct DroppingQueue {
    core: AsyncCore,
    dropped: Counter,
    /// Whether the warning about dropped lines is in the log.
    reported: AtomicBool,
}

impl DroppingQueue {
    /// Starts the writer thread running `drain`; the guard flushes and joins it when dropped.
    pub fn start<D>(drain: D, capacity: usize, dropped: Counter) -> (DroppingQueue, AsyncGuard)
    where
        D: Drain<Ok = (), Err = Never> + Send + 'static,
    {
        let (core, guard) = AsyncCore::custom(drain)
            .chan_size(capacity)
            .thread_name("log-writer".into())
            .build_with_guard();
        let queue = DroppingQueue {
            core,
            dropped,
            reported: AtomicBool::new(false),
        };
        (queue, guard)
    }

    /// Puts the one-time warning in the log; false if the queue is still full.
    fn report_dropped(&self, values: &OwnedKVList) -> bool {
        static WARNING: slog::RecordStatic<'static> =
            slog::record_static!(slog::Level::Warning, "");
        let dropped = self.dropped.get();
        let message = format_args!(
            "the log queue was full: lines were dropped (later drops are only counted, in the metric game_host_log_messages_dropped_total)"
        );
        let kv = slog::b!("dropped" => dropped);
        let record = Record::new(&WARNING, &message, kv);
        self.core.log(&record, values).is_ok()
    }
}

impl Drain for DroppingQueue {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        match self.core.log(record, values) {
            Ok(()) => {
                if self.dropped.get() > 0 && !self.reported.load(Ordering::Relaxed) {
                    let reported = self.report_dropped(values);
                    self.reported.fetch_or(reported, Ordering::Relaxed);
                }
            }
            Err(AsyncError::Full) => {
                self.dropped.inc();
            }
            // The writer thread is gone (shutting down): nothing left to write with.
            Err(_) => {
                self.dropped.inc();
            }
        }
        Ok(())
    }
}
