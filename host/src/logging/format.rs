//! How one log line looks in a file: the original framework's two formats.
//!
//! ```text
//! verbose: [INFO] [25/Nov/2026 14:03:07] [host/src/http.rs:60] request cmd=1203 ret=0
//! simple:  [INFO] [25/Nov/2026 14:03:07] request cmd=1203 ret=0
//! ```
//!
//! Key-values follow the message in both: an access line without its cmd and player would tell
//! an operator nothing. A line is always one line: newlines in messages and values (a module
//! may log anything) are escaped, so nobody can forge a line.
//!
//! Every request writes a line, so this runs on the request path: the date is formatted once
//! per second ([`Stamp`]), and the message with its pairs ([`LineBody`]) once per record
//! however many files take it, into buffers that are reused.

use crate::config::LineFormat;
use chrono::{DateTime, Local, NaiveDate, TimeZone};
use slog::{Key, OwnedKVList, Record, KV};
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::thread::LocalKey;

/// The time of a line, to the second: as written (`25/Nov/2026 14:03:07`) and as the local
/// date and time that decide when a daily file rolls over.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    second: i64,
    text: [u8; 20],
    pub time: DateTime<Local>,
}

impl Stamp {
    /// The stamp of `millis` since the epoch, formatted at most once per second per thread.
    pub fn of(millis: i64) -> Stamp {
        thread_local! {
            static LAST: std::cell::Cell<Option<Stamp>> = const { std::cell::Cell::new(None) };
        }
        let second = millis.div_euclid(1000);
        LAST.with(|last| match last.get() {
            Some(stamp) if stamp.second == second => stamp,
            _ => {
                let stamp = Stamp::format(second);
                last.set(Some(stamp));
                stamp
            }
        })
    }

    fn format(second: i64) -> Stamp {
        let time = Local
            .timestamp_opt(second, 0)
            .single()
            .unwrap_or_else(Local::now);
        let mut text = [b' '; 20];
        let mut cursor = &mut text[..];
        // Four-digit years fill the 20 bytes exactly; anything else is cut, never a panic.
        let _ = write!(cursor, "{}", time.format("%d/%b/%Y %H:%M:%S"));
        Stamp { second, text, time }
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or("??/???/???? ??:??:??")
    }

    pub fn date(&self) -> NaiveDate {
        self.time.date_naive()
    }
}

/// The part of a line after the head: the message and the pairs, escaped.
#[derive(Default)]
pub struct LineBody {
    pub text: String,
    /// Scratch for one value, to decide whether it needs quotes.
    value: String,
    pairs: Pairs,
}

/// A record's pairs and then its logger's, as slog hands them over (each group last first),
/// each value formatted once into one reused buffer: no allocation per pair.
#[derive(Default)]
pub struct Pairs {
    /// Each key and where its value sits in `values`.
    pairs: Vec<(Key, std::ops::Range<usize>)>,
    values: String,
    /// How many of `pairs` are the record's own (the rest are its logger's).
    own: usize,
}

impl Pairs {
    /// Forgets the last record's pairs and collects `record`'s, then `values`'.
    pub fn collect(&mut self, record: &Record<'_>, values: &OwnedKVList) {
        self.pairs.clear();
        self.values.clear();
        let mut collect = Collect {
            pairs: &mut self.pairs,
            values: &mut self.values,
        };
        let _ = record.kv().serialize(record, &mut collect);
        self.own = collect.pairs.len();
        let _ = values.serialize(record, &mut collect);
    }

    /// Each key and value, in the order slog handed them over.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &str)> {
        self.pairs
            .iter()
            .map(|(key, range)| (*key, &self.values[range.clone()]))
    }
}

impl LineBody {
    /// Runs `f` with this thread's reusable body ([`with_reused`]).
    pub fn with<R>(f: impl FnOnce(&mut LineBody) -> R) -> R {
        thread_local! {
            static BODY: RefCell<LineBody> = RefCell::new(LineBody::default());
        }
        with_reused(&BODY, f)
    }

    /// Formats `record`'s message and pairs, then the logger's pairs (`module`, `version`),
    /// each in the order the code wrote them.
    pub fn format(&mut self, record: &Record<'_>, values: &OwnedKVList) {
        self.text.clear();
        self.value.clear();
        match record.msg().as_str() {
            Some(message) => push_escaped(&mut self.text, message),
            None => {
                let _ = write!(self.value, "{}", record.msg());
                push_escaped(&mut self.text, &self.value);
            }
        }
        self.pairs.collect(record, values);
        // slog hands pairs over last first.
        let pairs = &mut self.pairs;
        pairs.pairs[..pairs.own].reverse();
        pairs.pairs[pairs.own..].reverse();
        for (key, value) in pairs.iter() {
            self.text.push(' ');
            self.text.push_str(key);
            self.text.push('=');
            if value.is_empty() || value.contains([' ', '"', '=']) {
                self.value.clear();
                let _ = write!(self.value, "{value:?}");
                push_escaped(&mut self.text, &self.value);
            } else {
                push_escaped(&mut self.text, value);
            }
        }
    }
}

/// Runs `f` with this thread's `T` in `cell`, reused line after line so that a line allocates
/// nothing once its buffers have grown. One in use (a value's own formatting logged again) or
/// gone (the thread is ending) is stood in for by a fresh `T`, rather than a panic.
pub fn with_reused<T: Default + 'static, R>(
    cell: &'static LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    let mut f = Some(f);
    let reused = cell.try_with(|cell| {
        let mut value = cell.try_borrow_mut().ok()?;
        f.take().map(|f| f(&mut value))
    });
    if let Ok(Some(done)) = reused {
        return done;
    }
    let f = f.expect("`f` has not run: the reused value was not there");
    f(&mut T::default())
}

/// Appends the head of a line: `[LEVEL] [date]`, and ` [source:line]` when verbose, then a
/// space; the body and a newline follow.
pub fn write_head(
    out: &mut Vec<u8>,
    format: LineFormat,
    level: slog::Level,
    stamp: &Stamp,
    record: &Record<'_>,
) {
    out.push(b'[');
    out.extend_from_slice(level_name(level).as_bytes());
    out.extend_from_slice(b"] [");
    out.extend_from_slice(&stamp.text);
    out.push(b']');
    if format == LineFormat::Verbose {
        let _ = write!(out, " [{}:{}]", record.file(), record.line());
    }
    out.push(b' ');
}

/// The whole line for `record`, newline included. The host's files build lines into their
/// batches instead; tests' drains use this.
#[cfg(test)]
pub fn line(
    format: LineFormat,
    stamp: &Stamp,
    record: &Record<'_>,
    values: &OwnedKVList,
) -> String {
    let mut out = Vec::new();
    write_head(&mut out, format, record.level(), stamp, record);
    LineBody::with(|body| {
        body.format(record, values);
        out.extend_from_slice(body.text.as_bytes());
    });
    out.push(b'\n');
    String::from_utf8(out).expect("a line is built from strings")
}

/// Python's level names, as the original's logs had them.
pub fn level_name(level: slog::Level) -> &'static str {
    match level {
        slog::Level::Critical => "CRITICAL",
        slog::Level::Error => "ERROR",
        slog::Level::Warning => "WARNING",
        slog::Level::Info => "INFO",
        slog::Level::Debug => "DEBUG",
        slog::Level::Trace => "TRACE",
    }
}

/// Writes each value after the ones before it and remembers where it is.
struct Collect<'a> {
    pairs: &'a mut Vec<(Key, std::ops::Range<usize>)>,
    values: &'a mut String,
}

impl slog::Serializer for Collect<'_> {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments<'_>) -> slog::Result {
        let start = self.values.len();
        match value.as_str() {
            Some(text) => self.values.push_str(text),
            None => {
                let _ = self.values.write_fmt(*value);
            }
        }
        self.pairs.push((key, start..self.values.len()));
        Ok(())
    }

    fn emit_str(&mut self, key: Key, value: &str) -> slog::Result {
        let start = self.values.len();
        self.values.push_str(value);
        self.pairs.push((key, start..self.values.len()));
        Ok(())
    }
}

/// Appends `text` with line breaks escaped.
fn push_escaped(out: &mut String, text: &str) {
    if !text.contains(['\n', '\r']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}
