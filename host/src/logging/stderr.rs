//! The readable stderr log: each line as slog-term's `FullFormat` writes it
//! (`Dec 04 10:20:01.123 INFO request, ms: 0.412, player: -, …`), coloured on a terminal,
//! formatted by the code that logs into a reused buffer and written out by a [`BatchWriter`]
//! like a file's.
//!
//! Why not slog-term's own formatter: it writes a line in some thirty pieces, each through
//! `dyn` writers and `fmt`, which with the default profile's access line at `info` cost a
//! tenth of the host's throughput (issue 23: 0.9 µs a line against 0.3 µs for all three files,
//! and more under load). So the line is built here, in slog-term's layout and order (a test
//! compares the two): the pairs are collected once into one buffer ([`Pairs`]), the date
//! formatted once a second, and the line copied whole into the batch. Before that, slog-term's
//! drain behind slog-async cost an owned copy of every record, a wake-up of the writer thread
//! and a `write` per piece: a third of the throughput.

use super::format::{with_reused, Pairs, Stamp};
use super::writer::{BatchWriter, Buffering, Sink};
use chrono::{DateTime, Local, TimeZone};
use slog::{Drain, OwnedKVList, Record};
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::Arc;

/// The stderr drain: formats a record and hands the line to the writer.
pub struct StderrDrain<W: Write + Send + 'static> {
    /// Whether lines get the terminal colours slog-term's `TermDecorator` would give them.
    color: bool,
    writer: StderrWriter<W>,
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
        let drain = StderrDrain {
            color,
            writer: writer.clone(),
        };
        Ok((drain, writer))
    }
}

/// Whether stderr gets colours: a terminal, and `NO_COLOR` not set (as slog-term decides).
pub fn wants_color() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && io::stderr().is_terminal()
}

/// One thread's buffers for a line: reused, so a line allocates nothing once they have grown.
#[derive(Default)]
struct LineBuffers {
    pairs: Pairs,
    line: Vec<u8>,
}

impl<W: Write + Send + 'static> Drain for StderrDrain<W> {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        thread_local! {
            static BUFFERS: RefCell<LineBuffers> = RefCell::new(LineBuffers::default());
        }
        with_reused(&BUFFERS, |buffers| self.emit(buffers, record, values));
        Ok(())
    }
}

// slog asks a root drain to be unwind-safe. A panic while a line is formatted leaves at most
// that line unfinished in this thread's buffers, which the next line clears; the batch's locks
// are taken poison-tolerant.
impl<W: Write + Send + 'static> std::panic::UnwindSafe for StderrDrain<W> {}
impl<W: Write + Send + 'static> std::panic::RefUnwindSafe for StderrDrain<W> {}

impl<W: Write + Send + 'static> StderrDrain<W> {
    fn emit(&self, buffers: &mut LineBuffers, record: &Record<'_>, values: &OwnedKVList) {
        let millis = chrono::Utc::now().timestamp_millis();
        buffers.pairs.collect(record, values);
        let line = &mut buffers.line;
        line.clear();
        Line {
            out: line,
            color: self.color,
        }
        .write(record, &buffers.pairs, millis);
        self.writer.push(record.level(), &Stamp::of(millis), |out| {
            out.extend_from_slice(line)
        });
    }
}

/// A line being written into `out`, in slog-term's `FullFormat` layout. With colour, the
/// escapes are the ANSI ones slog-term's `TermDecorator` sends through terminfo on common
/// terminals: every piece starts with a reset, except the level (in its colour), the message
/// and keys (bold).
struct Line<'a> {
    out: &'a mut Vec<u8>,
    color: bool,
}

impl Line<'_> {
    /// `Dec 04 10:20:01.123 INFO message, key: value, …` and the newline: the record's pairs,
    /// then its logger's, each group last first as slog hands them over (slog-term's order).
    fn write(&mut self, record: &Record<'_>, pairs: &Pairs, millis: i64) {
        self.reset();
        timestamp(self.out, millis);
        self.reset();
        self.out.push(b' ');
        if self.color {
            let color = slog_term::TermDecorator::level_to_color(record.level());
            let _ = write!(self.out, "\x1b[3{color}m");
        }
        self.out
            .extend_from_slice(record.level().as_short_str().as_bytes());
        self.reset();
        self.out.push(b' ');
        self.bold();
        let before = self.out.len();
        match record.msg().as_str() {
            Some(message) => self.out.extend_from_slice(message.as_bytes()),
            // Through `fmt::Write`: a `Display` that fails cuts the message short, where
            // `io::Write::write_fmt` would panic.
            None => {
                let _ = std::fmt::write(&mut Bytes(self.out), *record.msg());
            }
        }
        // slog-term puts a comma before the first pair only after a message.
        let mut comma = self.out.len() > before;
        for (key, value) in pairs.iter() {
            if comma {
                self.reset();
                self.out.extend_from_slice(b", ");
            }
            comma = true;
            self.bold();
            self.out.extend_from_slice(key.as_bytes());
            self.reset();
            self.out.push(b':');
            self.reset();
            self.out.push(b' ');
            self.reset();
            self.out.extend_from_slice(value.as_bytes());
        }
        self.reset();
        self.out.push(b'\n');
    }

    fn reset(&mut self) {
        if self.color {
            self.out.extend_from_slice(b"\x1b[0m");
        }
    }

    fn bold(&mut self) {
        if self.color {
            self.out.extend_from_slice(b"\x1b[1m");
        }
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

/// `fmt::Write` over a line's bytes.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// The time as slog-term writes it (`Dec 04 10:20:01.123`, local time), the part up to the
/// second formatted once a second per thread.
fn timestamp(out: &mut Vec<u8>, millis: i64) {
    thread_local! {
        static SECOND: Cell<(i64, [u8; 15])> = const { Cell::new((i64::MIN, [0; 15])) };
    }
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
    out.extend_from_slice(&text);
    let millis = millis.rem_euclid(1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ]);
}
