//! The readable stderr log: each line as slog-term's `FullFormat` writes it
//! (`Dec 04 10:20:01.123 INFO request, ms: 0.412, player: -, …`), coloured on a terminal,
//! formatted by the code that logs into a reused buffer and written out by a [`BatchWriter`]
//! like a file's.
//!
//! Why not slog-term's own drain behind slog-async, as before: every line then cost an owned
//! copy of the record (an allocation per pair), a wake-up of the writer thread, and some thirty
//! `write` calls to an unbuffered stderr, one per piece of the line; with the default profile's
//! access line at `info`, a third of the throughput (issue 23). Now the request's thread
//! formats (slog-term's formatter, our decorator, the date once a second) and copies one line
//! into the batch; the writer makes one `write` per batch.

use super::format::Stamp;
use super::writer::{BatchWriter, Buffering, Sink};
use chrono::{DateTime, Local, TimeZone};
use slog::{Drain, OwnedKVList, Record};
use slog_term::{Decorator, FullFormat, RecordDecorator};
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::Arc;

/// The stderr drain: formats a record and hands the line to the writer.
pub struct StderrDrain<W: Write + Send + 'static> {
    format: FullFormat<LineDecorator<W>>,
}

/// The writer thread's end: `out` (stderr, or a test's buffer), written a batch at a time.
pub struct StderrSink<W> {
    out: W,
}

/// The writer behind a [`StderrDrain`], to close it (write out what waits) at exit.
pub type StderrWriter<W> = Arc<BatchWriter<StderrSink<W>>>;

impl<W: Write + Send + 'static> StderrDrain<W> {
    /// Starts the writer thread over `out`; `color` adds the terminal colours slog-term's
    /// `TermDecorator` would.
    pub fn start(
        out: W,
        color: bool,
        buffering: Buffering,
    ) -> io::Result<(StderrDrain<W>, StderrWriter<W>)> {
        let sink = StderrSink { out };
        let writer = Arc::new(BatchWriter::start(sink, buffering, "stderr".into())?);
        let decorator = LineDecorator {
            color,
            writer: writer.clone(),
        };
        let format = FullFormat::new(decorator)
            .use_custom_timestamp(timestamp)
            .build();
        Ok((StderrDrain { format }, writer))
    }
}

/// Whether stderr gets colours: a terminal, and `NO_COLOR` not set (as slog-term decides).
pub fn wants_color() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && io::stderr().is_terminal()
}

impl<W: Write + Send + 'static> Drain for StderrDrain<W> {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        // Formatting into memory cannot fail; a value whose `Display` fails loses its line.
        let _ = self.format.log(record, values);
        Ok(())
    }
}

/// slog-term's `Decorator` over this thread's line buffer: the formatter writes the line into
/// it, then the line goes into the writer's batch.
struct LineDecorator<W: Write + Send + 'static> {
    color: bool,
    writer: StderrWriter<W>,
}

// slog asks a root drain to be unwind-safe. A panic while a line is formatted leaves at most
// that line unfinished in this thread's buffer, which the next line clears; the batch's locks
// are taken poison-tolerant.
impl<W: Write + Send + 'static> std::panic::UnwindSafe for LineDecorator<W> {}
impl<W: Write + Send + 'static> std::panic::RefUnwindSafe for LineDecorator<W> {}

impl<W: Write + Send + 'static> Decorator for LineDecorator<W> {
    fn with_record<F>(&self, record: &Record<'_>, _values: &OwnedKVList, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut dyn RecordDecorator) -> io::Result<()>,
    {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => self.emit(&mut line, record, f),
            // A value's formatting logged again: a buffer of its own rather than a panic.
            Err(_) => self.emit(&mut Vec::new(), record, f),
        })
    }
}

impl<W: Write + Send + 'static> LineDecorator<W> {
    fn emit<F>(&self, line: &mut Vec<u8>, record: &Record<'_>, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut dyn RecordDecorator) -> io::Result<()>,
    {
        line.clear();
        let level = record.level();
        f(&mut LineWriter {
            line: &mut *line,
            color: self.color,
            level,
        })?;
        let stamp = Stamp::of(Local::now().timestamp_millis());
        self.writer
            .push(level, &stamp, |out| out.extend_from_slice(line));
        Ok(())
    }
}

/// Where one line is formatted. With colour, the escapes are the ANSI ones slog-term's
/// `TermDecorator` sends through terminfo on common terminals: the level in its colour, keys
/// and the message bold, everything else plain.
struct LineWriter<'a> {
    line: &'a mut Vec<u8>,
    color: bool,
    level: slog::Level,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RecordDecorator for LineWriter<'_> {
    fn reset(&mut self) -> io::Result<()> {
        if self.color {
            self.line.extend_from_slice(b"\x1b[0m");
        }
        Ok(())
    }

    fn start_level(&mut self) -> io::Result<()> {
        if self.color {
            let color = slog_term::TermDecorator::level_to_color(self.level);
            write!(self.line, "\x1b[3{color}m")?;
        }
        Ok(())
    }

    fn start_key(&mut self) -> io::Result<()> {
        if self.color {
            self.line.extend_from_slice(b"\x1b[1m");
        }
        Ok(())
    }

    fn start_msg(&mut self) -> io::Result<()> {
        self.start_key()
    }
}

impl<W: Write + Send + 'static> Sink for StderrSink<W> {
    fn write(&mut self, lines: &[u8], _time: &DateTime<Local>) -> io::Result<()> {
        self.out.write_all(lines)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// In the lines' format, uncoloured (it is rare), dated when it is written: the batch's
    /// stamp has no milliseconds, and would date it before the lines above it.
    fn dropped_warning(&self, _stamp: &Stamp, dropped: u64) -> String {
        format!(
            "{} WARN the log writer fell behind: {dropped} lines were dropped here (every drop is counted in the metric game_host_log_messages_dropped_total), dropped: {dropped}\n",
            Local::now().format("%b %d %H:%M:%S%.3f"),
        )
    }
}

/// The time as slog-term writes it (`Dec 04 10:20:01.123`, local time), the part up to the
/// second formatted once a second per thread.
fn timestamp(out: &mut dyn Write) -> io::Result<()> {
    thread_local! {
        static SECOND: Cell<(i64, [u8; 15])> = const { Cell::new((i64::MIN, [0; 15])) };
    }
    let millis = Local::now().timestamp_millis();
    let second = millis.div_euclid(1000);
    let text = SECOND.with(|cached| {
        let (at, text) = cached.get();
        if at == second {
            return text;
        }
        let mut text = [b' '; 15];
        if let Some(time) = Local.timestamp_opt(second, 0).single() {
            // "Dec 04 10:20:01" is 15 bytes; anything longer is cut, never a panic.
            let _ = write!(&mut text[..], "{}", time.format("%b %d %H:%M:%S"));
        }
        cached.set((second, text));
        text
    });
    out.write_all(&text)?;
    write!(out, ".{:03}", millis.rem_euclid(1000))
}
