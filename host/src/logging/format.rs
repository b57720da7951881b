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

use crate::config::LineFormat;
use chrono::{DateTime, Local};
use slog::{Key, OwnedKVList, Record, KV};
use std::fmt::{self, Write as _};

/// Appends the line for `record` to `out`, newline included.
pub fn write_line(
    out: &mut String,
    format: LineFormat,
    time: &DateTime<Local>,
    record: &Record<'_>,
    values: &OwnedKVList,
) {
    let _ = write!(
        out,
        "[{}] [{}]",
        level_name(record.level()),
        time.format("%d/%b/%Y %H:%M:%S")
    );
    if format == LineFormat::Verbose {
        let _ = write!(out, " [{}:{}]", record.file(), record.line());
    }
    out.push(' ');
    push_escaped(out, &record.msg().to_string());
    // slog hands pairs over last first; they are written in the order the code wrote them:
    // the record's own, then the logger's (`module`, `version`).
    let mut pairs = Pairs(Vec::new());
    let _ = record.kv().serialize(record, &mut pairs);
    let own = pairs.0.len();
    let _ = values.serialize(record, &mut pairs);
    pairs.0[..own].reverse();
    pairs.0[own..].reverse();
    for (key, value) in pairs.0 {
        let _ = write!(out, " {key}=");
        if value.is_empty() || value.contains([' ', '"', '=']) {
            push_escaped(out, &format!("{value:?}"));
        } else {
            push_escaped(out, &value);
        }
    }
    out.push('\n');
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

/// Collects the pairs; values with spaces, quotes or `=` are written quoted.
struct Pairs(Vec<(Key, String)>);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments<'_>) -> slog::Result {
        self.0.push((key, value.to_string()));
        Ok(())
    }
}

/// Appends `text` with line breaks escaped.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}
